"""What a verdict rule read, as JSON that decodes to equal objects: how a recorded claim is
judged again under the rules of the code now (``claims.rejudge``) without recomputing it.

Handles what the rules take: None, bools, ints, floats (NaN and infinities included), strings,
numpy scalars and arrays (dtype kept), torch tensors, tuples, lists, dicts with any hashable
keys, pandas Series, DataFrames and their indexes (MultiIndex and RangeIndex included) and
dataclasses of these. Floats survive exactly (JSON keeps the shortest repr that round-trips).
Anything else is refused with the type's name: a rule's inputs must be data, not models.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import numpy as np
import pandas as pd
import torch

from sae_failures.engine.devices import to_numpy

TAG = "$type"


def encode(obj: Any) -> Any:
    """``obj`` as JSON-ready values, tagged where JSON alone would lose its type."""
    if obj is None or (isinstance(obj, bool | int | float | str) and not isinstance(obj, np.generic)):
        return obj
    if isinstance(obj, np.generic):
        return {TAG: "scalar", "dtype": str(obj.dtype), "value": obj.item()}
    if isinstance(obj, np.ndarray):
        items = [encode(x) for x in obj.ravel().tolist()] if obj.dtype == object else obj.ravel().tolist()
        return {TAG: "ndarray", "dtype": str(obj.dtype), "shape": list(obj.shape), "items": items}
    if isinstance(obj, torch.Tensor):
        return {TAG: "tensor", "array": encode(to_numpy(obj))}
    if isinstance(obj, tuple):
        return {TAG: "tuple", "items": [encode(x) for x in obj]}
    if isinstance(obj, list):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {TAG: "dict", "items": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, pd.RangeIndex):
        return {TAG: "range", "start": obj.start, "stop": obj.stop, "step": obj.step, "name": encode(obj.name)}
    if isinstance(obj, pd.MultiIndex):
        return {TAG: "multiindex", "tuples": [encode(t) for t in obj], "names": [encode(n) for n in obj.names]}
    if isinstance(obj, pd.Index):
        return {TAG: "index", "values": encode(obj.to_numpy()), "name": encode(obj.name)}
    if isinstance(obj, pd.Series):
        return {TAG: "series", "values": encode(obj.to_numpy()), "index": encode(obj.index), "name": encode(obj.name)}
    if isinstance(obj, pd.DataFrame):
        return {TAG: "frame", "columns": encode(obj.columns), "index": encode(obj.index),
                "data": [encode(obj.iloc[:, i].to_numpy()) for i in range(obj.shape[1])]}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        return {TAG: "dataclass", "class": f"{cls.__module__}.{cls.__qualname__}",
                "fields": {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}}
    raise TypeError(f"A verdict rule's inputs must be data; cannot record a {type(obj).__name__}.")


def decode(data: Any) -> Any:
    """The object ``encode`` was given."""
    if isinstance(data, list):
        return [decode(x) for x in data]
    if not isinstance(data, dict):
        return data
    kind = data[TAG]
    if kind == "scalar":
        return np.dtype(data["dtype"]).type(data["value"])
    if kind == "ndarray":
        items = [decode(x) for x in data["items"]] if data["dtype"] == "object" else data["items"]
        array = np.empty(len(items), dtype=object) if data["dtype"] == "object" else None
        if array is not None:
            array[:] = items
        else:
            array = np.array(items, dtype=np.dtype(data["dtype"]))
        return array.reshape(data["shape"])
    if kind == "tensor":
        return torch.from_numpy(decode(data["array"]))
    if kind == "tuple":
        return tuple(decode(x) for x in data["items"])
    if kind == "dict":
        return {decode(k): decode(v) for k, v in data["items"]}
    if kind == "range":
        return pd.RangeIndex(data["start"], data["stop"], data["step"], name=decode(data["name"]))
    if kind == "multiindex":
        return pd.MultiIndex.from_tuples([decode(t) for t in data["tuples"]], names=[decode(n) for n in data["names"]])
    if kind == "index":
        return pd.Index(decode(data["values"]), name=decode(data["name"]))
    if kind == "series":
        return pd.Series(decode(data["values"]), index=decode(data["index"]), name=decode(data["name"]))
    if kind == "frame":
        columns = decode(data["columns"])
        frame = pd.DataFrame({i: decode(col) for i, col in enumerate(data["data"])}, index=decode(data["index"]))
        frame.columns = columns
        return frame
    if kind == "dataclass":
        module, _, name = data["class"].rpartition(".")
        cls = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        return cls(**{k: decode(v) for k, v in data["fields"].items()})
    raise ValueError(f"Unknown encoded type {kind!r}.")
