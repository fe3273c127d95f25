"""Benchmark BackgroundMattingV2 inference: latency, throughput and peak memory per configuration.

    python benchmark.py --preset issue4 --engine dygraph inference    # the README table
    python benchmark.py --resolution 1920x1080 --engine inference --video
    python benchmark.py --device gpu --precision float32 float16

Prints one JSON line per configuration (see utils/benchmark.py for the fields and method).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from utils.benchmark import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
