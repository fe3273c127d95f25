"""Deployment: inference engines (`engine.create_engine`), the Paddle Inference / ONNX export, the benchmark.

    from utils.deploy.engine import create_engine
    engine = create_engine('model.pdparams', engine='auto', device='cpu')
"""
