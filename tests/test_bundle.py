"""Bundle persistence, integrity checks and the storage report."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import lets_core
from lets_core.bundle import CONFIG_FILE, TENSORS_FILE


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).eval()
    return aux, lets_core.save_bundle(aux, tmp_path / "bundle")


def test_round_trip_reproduces_logits_and_state(saved):
    aux, path = saved
    loaded = lets_core.load_bundle(path).eval()
    assert loaded.cfg == aux.cfg
    for key, value in aux.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), aux(x), rtol=0, atol=0)
    assert not loaded.learngene.pos_embed.requires_grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_round_trip_keeps_the_saved_dtype(tmp_path, dtype):
    """A bundle saved in float64 or bfloat16 used to come back as float32: another network."""
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).to(dtype)
    with torch.no_grad():
        aux.width.f_e.add_(1e-9)  # below float32's resolution near 1
    loaded = lets_core.load_bundle(lets_core.save_bundle(aux, tmp_path / "bundle"))
    for key, value in aux.state_dict().items():
        assert loaded.state_dict()[key].dtype == dtype and torch.equal(loaded.state_dict()[key], value), key
    trainable = lambda m: sorted(n for n, p in m.named_parameters() if p.requires_grad)  # noqa: E731
    assert trainable(loaded) == trainable(aux)


def test_bad_map_location_is_named_not_blamed_on_the_file(saved):
    _, path = saved
    with pytest.raises(ValueError, match="map_location 'gpu0' is not a device") as info:
        lets_core.load_bundle(path, map_location="gpu0")
    assert not isinstance(info.value, lets_core.BundleError)


def test_truncated_file_fails_loudly(saved):
    _, path = saved
    data = (path / TENSORS_FILE).read_bytes()
    (path / TENSORS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(lets_core.BundleError, match="corrupted or truncated"):
        lets_core.load_bundle(path)


def test_flipped_byte_fails_loudly(saved):
    _, path = saved
    data = bytearray((path / TENSORS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (path / TENSORS_FILE).write_bytes(bytes(data))
    with pytest.raises(lets_core.BundleError, match="corrupted or truncated"):
        lets_core.load_bundle(path)


def test_config_that_does_not_match_tensors(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["config"]["aux_embed_dim"] = 48  # the tensors were saved for 64
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(lets_core.BundleError, match=r"has shape .* but the configuration needs"):
        lets_core.load_bundle(path)


def test_missing_and_invalid_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(lets_core.BundleError, match="is missing"):
        lets_core.load_bundle(tmp_path / "nowhere")
    (path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(lets_core.BundleError, match="not valid JSON"):
        lets_core.load_bundle(path)
    (path / CONFIG_FILE).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(lets_core.BundleError, match="format_version 99"):
        lets_core.load_bundle(path)


def test_invalid_config_in_bundle(saved):
    _, path = saved
    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["config"]["aux_depth"] = 7
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(lets_core.BundleError, match="aux_depth 7 cannot be laid out"):
        lets_core.load_bundle(path)


def test_storage_report_of_the_paper_configuration():
    aux = lets_core.AuxNet(lets_core.presets.paper())
    report = lets_core.storage_report(aux, [(6, 12), (12, 12)])
    assert report.bundle_params == 37_735_784
    assert report.des_params == (22_049_896, 86_566_120)
    assert report.des_total == 22_049_896 + 86_566_120
    assert "Des-H12-L12: 86.6 M" in str(report)


def test_storage_report_counts_what_is_stored_whatever_is_trained(tmp_path):
    """It counted requires_grad parameters: freezing the learngene to tune F and G alone halved the
    bundle (68,042 -> 31,872) and doubled the storage ratio, though the file held the same values;
    and a size listed twice counted its model twice."""
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    stored = lets_core.storage_report(aux, [(2, 4)]).bundle_params
    for p in aux.learngene.parameters():
        p.requires_grad_(False)
    assert lets_core.storage_report(aux, [(2, 4)]).bundle_params == stored == 68_042
    on_disk = sum(t.numel() for t in load_file(str(lets_core.save_bundle(aux, tmp_path / "b") / TENSORS_FILE)).values())
    assert on_disk == stored + aux.learngene.pos_embed.numel()  # the one tensor no Des-Net uses
    with pytest.raises(ValueError, match=r"sizes lists \(heads=2, depth=4\) more than once"):
        lets_core.storage_report(aux, [(2, 4), (4, 8), (2, 4)])
    assert "Des-H2-L4: 36.7 K" in str(lets_core.storage_report(aux, [(2, 4)]))  # printed "0.0 M"


def test_storage_report_and_save_bundle_name_wrong_objects(tmp_path):
    from timm.utils import ModelEmaV3
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    with pytest.raises(TypeError, match="storage_report needs an AuxNet, got LetsConfig"):
        lets_core.storage_report(aux.cfg, [(3, 6)])
    with pytest.raises(TypeError, match="save_bundle needs an AuxNet, got ModelEmaV3; .*pass its .module"):
        lets_core.save_bundle(ModelEmaV3(aux), tmp_path / "b")
    assert lets_core.storage_report(torch.nn.DataParallel(aux), [(3, 6)]).bundle_params == aux.stored_parameter_count()


def test_save_refuses_what_load_would_refuse_before_writing(tmp_path):
    """A parametrized F (torch.nn.utils.parametrize) was saved as 'width.parametrizations.f_e.original',
    the raw value and not the F the network used, into a signed bundle that load_bundle refused."""
    import torch.nn.utils.parametrize as parametrize

    class Double(torch.nn.Module):
        def forward(self, value):
            return 2 * value

    aux = lets_core.AuxNet(lets_core.presets.tiny())
    parametrize.register_parametrization(aux.width, "f_e", Double())
    with pytest.raises(ValueError, match=r"save_bundle: the Aux-Net's width.f_e is parametrized .*"
                                         r"remove_parametrizations\(module, name\)"):
        lets_core.save_bundle(aux, tmp_path / "bundle")
    parametrize.remove_parametrizations(aux.width, "f_e")  # keeps the doubled F, as a plain parameter
    aux.width.register_buffer("extra", torch.zeros(1))  # any other tensor a load would not take
    with pytest.raises(ValueError, match=r"save_bundle: the Aux-Net's tensors do not match its configuration: "
                                         r"missing \[\], unexpected \['width.extra'\]"):
        lets_core.save_bundle(aux, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
    del aux.width.extra
    loaded = lets_core.load_bundle(lets_core.save_bundle(aux, tmp_path / "bundle"))
    assert torch.equal(loaded.width.f_e, aux.width.f_e)
