"""Read the weights inside a Caffe `.caffemodel` with the real protobuf library, never by hand.

A `.caffemodel` is a serialized `caffe.NetParameter`. Only the fields that carry weights are declared here;
protobuf skips every other field (solver settings, layer parameters) as unknown. The subset, with Caffe's own
field numbers (caffe/src/caffe/proto/caffe.proto):

    message BlobShape { repeated int64 dim = 1 [packed = true]; }
    message BlobProto {
      optional int32 num = 1; optional int32 channels = 2; optional int32 height = 3; optional int32 width = 4;
      repeated float data = 5 [packed = true];
      optional BlobShape shape = 7;
      repeated double double_data = 8 [packed = true];
    }
    message LayerParameter   { optional string name = 1; optional string type = 2; repeated BlobProto blobs = 7; }
    message V1LayerParameter { optional string name = 4; optional int32 type = 5;  repeated BlobProto blobs = 6; }
    message NetParameter {
      optional string name = 1;
      repeated V1LayerParameter layers = 2;   // models saved before 2015, such as bvlc_googlenet
      repeated LayerParameter layer = 100;    // models saved since, such as googlenet_places365
    }

The descriptor is built at import time from this description (no protoc, no generated code to keep in sync).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..errors import DreamscopeError

# (message, [(field, number, type, label, message type or None, packed)])
_SCHEMA = [
    ("BlobShape", [("dim", 1, "INT64", "REPEATED", None, True)]),
    (
        "BlobProto",
        [
            ("num", 1, "INT32", "OPTIONAL", None, False),
            ("channels", 2, "INT32", "OPTIONAL", None, False),
            ("height", 3, "INT32", "OPTIONAL", None, False),
            ("width", 4, "INT32", "OPTIONAL", None, False),
            ("data", 5, "FLOAT", "REPEATED", None, True),
            ("shape", 7, "MESSAGE", "OPTIONAL", "BlobShape", False),
            ("double_data", 8, "DOUBLE", "REPEATED", None, True),
        ],
    ),
    (
        "LayerParameter",
        [
            ("name", 1, "STRING", "OPTIONAL", None, False),
            ("type", 2, "STRING", "OPTIONAL", None, False),
            ("blobs", 7, "MESSAGE", "REPEATED", "BlobProto", False),
        ],
    ),
    (
        "V1LayerParameter",
        [
            ("name", 4, "STRING", "OPTIONAL", None, False),
            ("type", 5, "INT32", "OPTIONAL", None, False),  # an enum in Caffe; the same varint on the wire
            ("blobs", 6, "MESSAGE", "REPEATED", "BlobProto", False),
        ],
    ),
    (
        "NetParameter",
        [
            ("name", 1, "STRING", "OPTIONAL", None, False),
            ("layers", 2, "MESSAGE", "REPEATED", "V1LayerParameter", False),
            ("layer", 100, "MESSAGE", "REPEATED", "LayerParameter", False),
        ],
    ),
]
_PACKAGE = "dreamscope.caffe"


@functools.lru_cache(maxsize=1)
def messages() -> dict:
    """The message classes by name: NetParameter, LayerParameter, V1LayerParameter, BlobProto, BlobShape."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise DreamscopeError("reading .caffemodel files needs protobuf; run: pip install protobuf") from None
    field_type = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="dreamscope_caffe_subset.proto", package=_PACKAGE, syntax="proto2")
    for message_name, fields in _SCHEMA:
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, type_name, packed in fields:
            field = message.field.add(
                name=name, number=number, type=getattr(field_type, f"TYPE_{kind}"), label=getattr(field_type, f"LABEL_{label}")
            )
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    # GetMessageClass since protobuf 4.22; MessageFactory.GetPrototype before it (removed in 5).
    make = getattr(message_factory, "GetMessageClass", None) or message_factory.MessageFactory(pool).GetPrototype
    return {name: make(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name, _ in _SCHEMA}


def blob_to_tensor(blob) -> torch.Tensor:
    """A BlobProto's values with its shape: `shape.dim`, or the legacy 4-D num/channels/height/width."""
    if blob.HasField("shape"):
        dims = list(blob.shape.dim)
    else:
        dims = [blob.num, blob.channels, blob.height, blob.width]
    values = np.asarray(blob.double_data if len(blob.double_data) else blob.data, dtype=np.float32)
    if values.size != int(np.prod(dims)):
        raise DreamscopeError(f"a blob declares shape {'x'.join(map(str, dims))} but holds {values.size} values")
    return torch.from_numpy(values.reshape(dims))


def read_caffemodel(path: str | Path) -> dict[str, list[torch.Tensor]]:
    """Layer name -> its blobs (weight, then bias), in file order, for every layer that has weights."""
    path = Path(path)
    from google.protobuf.message import DecodeError

    net = messages()["NetParameter"]()
    try:
        net.ParseFromString(path.read_bytes())
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DreamscopeError(
            f"cannot read {path} as a Caffe model: it is damaged or not a .caffemodel ({exc.__class__.__name__}); "
            "download it again"
        ) from None
    except OSError as exc:
        raise DreamscopeError(f"cannot read {path}: {exc.strerror or exc}") from None
    layers: dict[str, list[torch.Tensor]] = {}
    for layer in [*net.layers, *net.layer]:
        if layer.blobs:
            try:
                layers[layer.name] = [blob_to_tensor(blob) for blob in layer.blobs]
            except DreamscopeError as exc:
                raise DreamscopeError(f"{path} is damaged: layer {layer.name}: {exc}") from None
    if not layers:
        raise DreamscopeError(f"{path} holds no layer weights; is it a .caffemodel (not a .prototxt or something else)?")
    return layers
