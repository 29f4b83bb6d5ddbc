"""One chunk of inputs -> its result records, the same way in the job's own process and in its workers.

A record is ``{"path", "text", "score"}`` (``"chars"`` too when asked), or ``{"path", "error", "message"}`` for an
input that could not be read: ``error`` is the exception's type name, ``message`` its text without the
``input N (path '...')`` prefix (the record names the path).
"""

from __future__ import annotations

__all__ = ["recognizer_for", "chunk_records"]


def recognizer_for(config: dict):
    """The :class:`~ppocr_torch.Recognizer` of a job's ``config`` (keyword arguments of ``Recognizer``, plus
    ``model``)."""
    from ..api import Recognizer

    kwargs = dict(config)
    return Recognizer(kwargs.pop("model"), **kwargs)


def chunk_records(rec, items: list, chars: bool = False) -> list[dict]:
    """Records of ``items`` (``(name, path)`` pairs), in their order; unreadable inputs become error records."""
    from ..image_io import describe_input

    results = rec.recognize([path for _, path in items], errors="return")
    records = []
    for i, ((name, path), res) in enumerate(zip(items, results)):
        if isinstance(res, BaseException):
            message = str(res)
            prefix = describe_input(path, i) + ": "
            if message.startswith(prefix):
                message = message[len(prefix):]
            records.append({"path": name, "error": type(res).__name__, "message": message})
            continue
        record = {"path": name, "text": res.text, "score": res.score}
        if chars:
            record["chars"] = res.to_dict()["chars"]
        records.append(record)
    return records
