"""The fidelity fixtures that travel with the code: the project's deterministic-weights"""

from __future__ import annotations

import hashlib

import deterministic_weights as dw
import pytest
from fixture_cases import shared_generator
from goldens import FIXTURES

#: sha256 over (key, tensor bytes) of every tensor of a layout, made with the shared
#: fixtures' ``detweights.py``. Together the two layouts exercise every rule: ViT and
#: ResNet weights, norm scales and biases, batch-norm running statistics, class token
#: and position embeddings, integer counters, LayerScale, mask token, the DAv2 head bias.
REFERENCE_DIGESTS = {
    "dpt_hybrid_ade20k": "9bfd52878629af7c5b131a16690ed92e16462e5048839bb081a75c88cde0fce1",
    "depth_anything_v2_vits": "6eca76c92b2607686c9a2dbd083fcbc8baea9bbbea84aa24e09c662850a75fd2",
}


@pytest.mark.parametrize("model_type", sorted(REFERENCE_DIGESTS))
def test_generator_is_bit_identical_to_the_fixtures_generator(model_type):
    """Always against the recorded digest; where ../shared is present, also tensor by
    tensor against its ``detweights.py``."""
    layout = dw.read_layout(FIXTURES / "keys" / f"keys_{model_type}.json")
    reference = shared_generator()
    digest = hashlib.sha256()
    for key, shape, dtype in layout:
        tensor = dw.deterministic_tensor(key, shape, dtype)
        assert tuple(tensor.shape) == tuple(shape) and str(tensor.dtype) == f"torch.{dtype}"
        data = tensor.contiguous().numpy().tobytes()
        if reference is not None:
            want = reference.deterministic_tensor(key, list(shape), dtype)
            assert want.dtype == tensor.dtype and data == want.contiguous().numpy().tobytes(), key
        digest.update(key.encode())
        digest.update(data)
    assert digest.hexdigest() == REFERENCE_DIGESTS[model_type]
