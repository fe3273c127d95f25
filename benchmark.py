"""Benchmark BackgroundMattingV2 inference: latency, throughput and peak memory per configuration.

    python benchmark.py --preset official --engine dygraph inference    # the README table
    python benchmark.py --resolution 1920x1080 --engine inference --video
    python benchmark.py --device gpu --precision float32 float16

Prints one JSON line per configuration (see utils/deploy/benchmark.py for the fields and method).
"""
import sys

from utils.deploy.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
