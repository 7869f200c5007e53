"""The text query of a label as a vector in its corpus's embedding space.

Zero-shot search ranks clips by it, and the trainer starts from it (va_core.learn.fit_prior).
"""
from __future__ import annotations

import numpy as np

from va_core.errors import InputError, NotFound
from va_core.labels import stored_text_embedding, text_query
from va_core.warehouse import Warehouse

__all__ = ["has_query", "query_vector", "prior_vector"]


def query_vector(settings, label: str, encoder_id: str) -> tuple[str, np.ndarray]:
    """``(query, unit vector)`` of ``label`` for the embeddings of ``encoder_id``.

    An imported corpus has no text tower: its label embeddings came with the dataset. Other
    encoders embed the label's description (else its name in words) with their text tower,
    which must be the configured encoder's.
    """
    from va_core.encoders import encoder_kind, load_encoder, parse_spec

    spec = parse_spec(settings.encoder)
    if encoder_id != spec.encoder_id:
        raise InputError(f"zero-shot needs the text tower of the corpus's encoder {encoder_id!r}, "
                         f"but the configured encoder is {spec.encoder_id!r}")
    if not encoder_kind(spec.kind).text_tower:
        vector = stored_text_embedding(settings, label, encoder_id)
        if vector is None:
            raise NotFound(f"encoder {encoder_id!r} has no text tower and the imported dataset has no text "
                           f"embedding for {label!r}: start this label from search-free feeds (random)")
        return label, vector
    query = text_query(Warehouse.from_settings(settings), label)
    return query, load_encoder(spec).encode_text([query])[0]


def has_query(settings, label: str, encoder_id: str) -> bool:
    """Whether :func:`query_vector` has a vector of ``label`` for ``encoder_id``, without embedding
    it: the corpus is the configured encoder's, and that encoder has a text tower or the label a
    stored text embedding (its cases, kept beside it)."""
    from va_core.encoders import encoder_kind, parse_spec

    spec = parse_spec(settings.encoder)
    if encoder_id != spec.encoder_id:
        return False
    return encoder_kind(spec.kind).text_tower or stored_text_embedding(settings, label, encoder_id) is not None


def prior_vector(settings, label: str, encoder_id: str) -> np.ndarray | None:
    """The text query the trainer starts from, or None when there is no meaningful one: an
    encoder with random weights (its text vectors are noise), another encoder's corpus, or an
    imported label without a text embedding."""
    from va_core.encoders import parse_spec

    spec = parse_spec(settings.encoder)
    if encoder_id != spec.encoder_id or not spec.has_semantics:
        return None
    try:
        return query_vector(settings, label, encoder_id)[1]
    except NotFound:
        return None
