"""Deployment: inference engines (`engine.create_engine`), the Paddle Inference and ONNX exports, the
ONNX Runtime / OpenVINO engines, the benchmark.

    from utils.deploy.engine import create_engine
    engine = create_engine('model.pdparams', engine='auto', device='cpu')
"""
