"""Write real `.caffemodel` files for tests, through the same protobuf messages dreamscope reads them with.

dreamscope only reads Caffe files; making them is test support, so it lives here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dreamscope.models.caffe import messages


def write_caffemodel(path: str | Path, layers: dict[str, list[torch.Tensor]], name: str = "", legacy: bool = False) -> Path:
    """Serialize layer weights as a `.caffemodel` (new `layer` format, or the pre-2015 `layers` with 4-D blob dims)."""
    net = messages()["NetParameter"](name=name)
    for layer_name, blobs in layers.items():
        layer = net.layers.add(name=layer_name) if legacy else net.layer.add(name=layer_name)
        for tensor in blobs:
            blob = layer.blobs.add()
            values = tensor.detach().float().cpu().numpy()
            if legacy:  # BlobProto's old fields: always four numbers, leading ones for fewer dimensions
                dims = [1] * (4 - values.ndim) + list(values.shape)
                blob.num, blob.channels, blob.height, blob.width = dims
            else:
                blob.shape.dim.extend(values.shape)
            blob.data.extend(values.ravel().tolist())
    Path(path).write_bytes(net.SerializeToString())
    return Path(path)
