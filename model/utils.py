"""Shape helpers that work both in dygraph and when the model is traced for export.

Exported models take inputs of any size ([None, 3, None, None]); while tracing, the static shape
holds -1 for those dimensions, so sizes must come from the runtime shape (`paddle.shape`).
In dygraph the same helpers return plain Python ints, which keeps eager execution cheap.
"""
import paddle


def spatial_size(x):
    """[H, W] of an NCHW tensor: Python ints in dygraph, 0-d int tensors when traced."""
    if paddle.in_dynamic_mode():
        return list(x.shape[2:])
    shape = paddle.shape(x)
    return [shape[2], shape[3]]


def batch_size(x):
    """B of a tensor: a Python int in dygraph, a 0-d int tensor when traced."""
    if paddle.in_dynamic_mode():
        return x.shape[0]
    return paddle.shape(x)[0]
