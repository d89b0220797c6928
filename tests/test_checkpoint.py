"""asid_fast.load_checkpoint: formats, wrappers and clear errors."""
import pytest
import torch
from safetensors.torch import save_file

from asid_fast import CheckpointError, load_checkpoint
from asid_fast.reference import ASID


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(1)
    return ASID(2)


def _same(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"params": sd},
    lambda sd: {"params_ema": sd, "params": {k: torch.zeros_like(v) for k, v in sd.items()}},
    lambda sd: {"state_dict": sd},
    lambda sd: {"model": sd, "optimizer": {"state": {}}, "step": torch.tensor(3)},
    lambda sd: {"module." + k: v for k, v in sd.items()},
])
def test_wrappers(tmp_path, source, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(source.state_dict()), path)
    target = load_checkpoint(ASID(2), path)
    assert _same(source, target)


def test_safetensors_round_trip(tmp_path, source):
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    assert _same(source, load_checkpoint(ASID(2), path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(ASID(2), tmp_path / "nope.pth")


def test_missing_and_unexpected_keys(tmp_path, source):
    sd = dict(source.state_dict())
    del sd["input.weight"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "c.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(ASID(2), tmp_path / "c.pth")
    msg = str(err.value)
    assert "1 missing keys: input.weight" in msg and "1 unexpected keys: extra.weight" in msg


def test_wrong_shape(tmp_path, source):
    sd = dict(source.state_dict())
    sd["output.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"output.bias: checkpoint \(7,\) vs model \(48,\)"):
        load_checkpoint(ASID(2), tmp_path / "c.pth")


def test_guesses_scale_and_variant(tmp_path):
    torch.save(ASID(4, "asid_d8").state_dict(), tmp_path / "d8x4.pth")
    with pytest.raises(CheckpointError, match="looks like ASID-D8 x4 but the model is ASID x2"):
        load_checkpoint(ASID(2), tmp_path / "d8x4.pth")


def test_not_a_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load_checkpoint(ASID(2), tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(ASID(2), tmp_path / "junk.pth")


def test_empty_file_gives_the_reason(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pth: the file is empty \(0 bytes\)"):
        load_checkpoint(ASID(2), tmp_path / "empty.pth")


@pytest.mark.parametrize("poison,message", [
    (lambda sd: sd["input.weight"].view(-1).__setitem__(5, float("nan")),
     "1 tensors hold NaN or Inf: input.weight; these weights cannot make an image"),
    (lambda sd: sd["output.bias"].fill_(float("inf")), "1 tensors hold NaN or Inf: output.bias"),
])
def test_non_finite_weights_are_refused(tmp_path, source, poison, message):
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    poison(sd)
    torch.save(sd, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(ASID(2), tmp_path / "c.pth")


def test_integer_weights_are_refused(tmp_path, source):
    sd = {k: v.round().to(torch.int64) for k, v in source.state_dict().items()}
    torch.save(sd, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"tensors are not floating-point: input.weight "
                                              r"\(torch.int64\), .* more; these are not trained"):
        load_checkpoint(ASID(2), tmp_path / "c.pth")


def test_training_checkpoint_checksum(tmp_path, source):
    from asid_fast.checkpoint import CHECKSUM_KEY, with_checksum

    state = with_checksum({"model": source.state_dict(), "step": 3})
    torch.save(state, tmp_path / "ok.pt")
    assert _same(source, load_checkpoint(ASID(2), tmp_path / "ok.pt"))
    changed = {**state, "model": {**state["model"], "output.bias": state["model"]["output.bias"] + 1}}
    torch.save(changed, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt is damaged: its contents do not match"):
        load_checkpoint(ASID(2), tmp_path / "bad.pt")
    torch.save({**state, "step": 4}, tmp_path / "bad_step.pt")  # not only tensors are covered
    with pytest.raises(CheckpointError, match="is damaged"):
        load_checkpoint(ASID(2), tmp_path / "bad_step.pt")
    assert CHECKSUM_KEY in state
