"""O-LoRA and InfLoRA each do what defines them: the maths on hand-made matrices, and on the micro stream (experience
0 = task 1, experience 1 = task 2, both CT+PET) the frozen earlier LoRA, the sum of LoRAs at inference, O-LoRA's
lower overlap and InfLoRA's zero output on the earlier input subspace."""

from __future__ import annotations


import pytest
import torch
from avalanche.core import SupervisedPlugin

from pemma_cl.strategies.inflora import InfLoraOptions
from pemma_cl.strategies.o_lora import OLoraOptions

FIRST, SECOND = "experience0", "experience1"


def lora_params(params: dict, adapter: str) -> dict:
    return {k: v for k, v in params.items() if f".lora_A.{adapter}." in k or f".lora_B.{adapter}." in k}


def recorded_overlap(params: dict) -> float:
    """Sum over LoRA'd linears of ||A_1 A_0^T||_F^2, from recorded parameters."""
    total = 0.0
    for key, new in params.items():
        if f".lora_A.{SECOND}." in key:
            total += float((new @ params[key.replace(SECOND, FIRST)].T).pow(2).sum())
    return total


# --- the maths, by hand ---------------------------------------------------------------------------------------------

def test_squared_overlap_by_hand() -> None:
    from pemma_cl.strategies._o_lora import squared_overlap

    new = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert float(squared_overlap(new, torch.tensor([[1.0, 1.0, 0.0]]))) == 2.0  # new old^T = [[1], [1]]
    assert float(squared_overlap(new, torch.tensor([[0.0, 0.0, 3.0]]))) == 0.0


def test_basis_grows_until_the_threshold_share_of_energy_is_captured() -> None:
    from pemma_cl.strategies._inflora import extend_basis

    moment = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))  # energy 10
    empty = torch.zeros(4, 0, dtype=torch.float64)
    first = extend_basis(empty, moment, 0.85)  # 0.4, 0.7, 0.9: three directions
    assert first.shape == (4, 3) and torch.allclose(first.abs(), torch.eye(4, dtype=torch.float64)[:, :3])
    assert extend_basis(empty, moment, 0.4).shape == (4, 1)  # 0.4 reached by the first
    e1 = torch.eye(4, dtype=torch.float64)[:, :1]
    grown = extend_basis(e1, moment, 0.85)  # e1 holds 0.4 already: add e2 (0.7) and e3 (0.9)
    assert torch.equal(grown[:, :1], e1)
    assert torch.allclose(grown[:, 1:].abs(), torch.eye(4, dtype=torch.float64)[:, 1:3])
    assert torch.equal(extend_basis(first, moment, 0.85), first)  # captured already: unchanged


def test_down_projection_lies_outside_the_earlier_subspace() -> None:
    from pemma_cl.strategies._inflora import ROW_NORM, down_projection

    moment = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    eye = torch.eye(4, dtype=torch.float64)
    fresh = down_projection(moment, eye[:, :0], rank=2)  # no earlier subspace: the top two directions
    assert torch.allclose(fresh.abs(), ROW_NORM * eye[:2])
    after = down_projection(moment, eye[:, :2], rank=3)  # e1, e2 taken: e3, e4, then a zero row
    assert torch.allclose(after.abs(), ROW_NORM * torch.cat((eye[2:], eye[:1] * 0)))
    rotated = torch.linalg.qr(torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    assert (down_projection(moment, rotated, rank=2) @ rotated).abs().max() < 1e-12


def test_options_refuse_values_outside_their_range() -> None:
    assert OLoraOptions().lambda_ == 0.5 and InfLoraOptions().threshold == 0.95
    with pytest.raises(ValueError, match="lambda: expected a number >= 0"):
        OLoraOptions(lambda_=-1.0)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"threshold: expected a number in \(0, 1\]"):
            InfLoraOptions(threshold=bad)


def test_inflora_threshold_rises_linearly_toward_one() -> None:
    from pemma_cl.strategies._inflora import InfLoraPlugin

    plugin = InfLoraPlugin(0.95, [("ct", "pet")] * 4)
    assert [plugin.threshold_at(i) for i in range(4)] == pytest.approx([0.95, 0.9625, 0.975, 0.9875])


# --- o-lora on the micro stream ------------------------------------------------------------------------------------

def test_o_lora_leaves_the_earlier_lora_bit_identical(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["o-lora"])
    (after0, after1), initial = run.recorder.after_exp, run.recorder.initial
    first = lora_params(after0, FIRST)
    assert first and any(not torch.equal(v, initial[k]) for k, v in first.items())  # it trained at experience 0
    assert all(torch.equal(after1[k], v) for k, v in first.items())  # and experience 1 left it alone
    assert not lora_params(after0, SECOND)
    second = lora_params(after1, SECOND)
    assert any(float(v.abs().max()) > 0 for k, v in second.items() if ".lora_B." in k)  # the new LoRA trained
    assert run.evaluation.startswith("task-agnostic")


def test_o_lora_penalty_lowers_the_overlap_of_the_down_projections(run_entry, registered_entries) -> None:
    entry = registered_entries["o-lora"]
    free, penalised = run_entry(entry, {"lambda": 0.0}), run_entry(entry)
    # Same seed, same first experience (the penalty starts at the second), so the same draw of the new LoRA.
    assert all(torch.equal(free.recorder.after_exp[0][k], v) for k, v in penalised.recorder.after_exp[0].items())
    assert recorded_overlap(penalised.recorder.after_exp[1]) < 0.9 * recorded_overlap(free.recorder.after_exp[1])


def test_o_lora_evaluates_the_base_plus_the_sum_of_every_lora(run_entry, registered_entries) -> None:
    run = run_entry(registered_entries["o-lora"])
    model = run.model
    before = [r["disabled"] for r in run.recorder.evals if r["trained"] == 0]
    assert before and all(before)  # before any training, the CT base itself
    generator = torch.Generator().manual_seed(0)
    layers = [m for m in model.modules() if hasattr(m, "lora_A") and SECOND in m.lora_A]
    assert layers and all(m.active_adapters == [FIRST, SECOND] for m in layers)
    with torch.no_grad():
        for layer in layers:
            x = torch.randn(3, 5, layer.in_features, generator=generator)
            expected = layer.base_layer(x) + sum(layer.scaling[a] * layer.lora_B[a](layer.lora_A[a](x))
                                                 for a in (FIRST, SECOND))
            assert torch.allclose(layer(x), expected, atol=1e-6)
            assert not torch.allclose(layer(x), layer.base_layer(x) + layer.scaling[SECOND] * layer.lora_B[SECOND](
                layer.lora_A[SECOND](x)), atol=1e-6)  # the first LoRA does contribute


# --- inflora on the micro stream -----------------------------------------------------------------------------------

class BasisSpy(SupervisedPlugin):
    """Copies InfLoRA's bases after each experience (it runs after the strategy's own plugins)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_exp: list[dict] = []

    def after_training_exp(self, strategy, **kwargs) -> None:
        inflora = next(p for p in strategy.plugins if type(p).__name__ == "InfLoraPlugin")
        self.after_exp.append({k: v.clone() for k, v in inflora.bases.items()})


@pytest.fixture(scope="module")
def inflora_run(run_entry, registered_entries):
    spy = BasisSpy()
    run = run_entry(registered_entries["inflora"], plugins=(spy,))
    run.bases = spy.after_exp
    return run


def test_inflora_new_lora_gives_zero_on_the_earlier_input_subspace(inflora_run) -> None:
    earlier = inflora_run.bases[0]
    layers = {n: m for n, m in inflora_run.model.named_modules() if hasattr(m, "lora_A") and SECOND in m.lora_A}
    assert layers and set(layers) == set(earlier)
    generator = torch.Generator().manual_seed(0)
    for name, layer in layers.items():
        basis = earlier[name]
        assert 0 < basis.shape[1] < basis.shape[0]  # a proper subspace was kept
        assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1], dtype=basis.dtype), atol=1e-10)
        x = (torch.randn(16, basis.shape[1], generator=generator, dtype=basis.dtype) @ basis.T).float()
        down = layer.lora_A[SECOND](x)
        assert float(down.norm()) < 1e-5 * float(layer.lora_A[SECOND].weight.norm() * x.norm()), name
        with torch.no_grad():
            out = layer.lora_B[SECOND](down) * layer.scaling[SECOND]
        assert float(out.abs().max()) < 1e-5 * float(x.abs().max()), name
        assert not layer.lora_A[SECOND].weight.requires_grad  # fixed: only B trains


def test_inflora_designs_fixed_down_projections_and_leaves_earlier_loras_bit_identical(inflora_run) -> None:
    from pemma_cl.strategies._inflora import ROW_NORM

    (after0, after1) = inflora_run.recorder.after_exp
    first = lora_params(after0, FIRST)
    assert first and all(torch.equal(after1[k], v) for k, v in first.items())
    for key, weight in lora_params(after1, SECOND).items():
        if ".lora_A." in key:  # orthogonal rows of the designed norm, as set before training (never trained)
            assert torch.allclose(weight @ weight.T, ROW_NORM ** 2 * torch.eye(len(weight)), atol=1e-6), key
        else:
            assert float(weight.abs().max()) > 0, key  # B trained
    for name, basis in inflora_run.bases[1].items():  # the basis only grows
        assert torch.equal(basis[:, :inflora_run.bases[0][name].shape[1]], inflora_run.bases[0][name])
    stored = sum(b.numel() * b.element_size() for b in inflora_run.bases[1].values())
    assert inflora_run.cost["past_bytes"] == stored
