"""Small shape helpers that work both in dygraph and when the model is traced for export."""
import paddle


def spatial_size(x):
    """(H, W) of an NCHW tensor: Python ints in dygraph, a shape tensor slice when traced.

    Exported models take inputs of any size ([None, 3, None, None]), so during tracing the size
    must come from the runtime shape, not from the static one (which holds -1).
    """
    if paddle.in_dynamic_mode():
        return list(x.shape[2:])
    return paddle.shape(x)[2:]
