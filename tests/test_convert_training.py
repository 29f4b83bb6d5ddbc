"""Training checkpoints (.pdparams, PaddleOCR naming) built from the official weights convert back to the
official model: checked against ONNX Runtime on the official export. Plus the failure modes."""

import pickle

import numpy as np
import pytest
import torch
import yaml

from paddle_ckpt import paddle_state, save_pdparams, unfuse

V2_ARCH = {"model_type": "rec", "algorithm": "CRNN", "Transform": None,
           "Backbone": {"name": "MobileNetV1Enhance", "scale": 0.5},
           "Neck": {"name": "SequenceEncoder", "encoder_type": "rnn", "hidden_size": 64},
           "Head": {"name": "CTCHead", "mid_channels": 96, "fc_decay": 2e-05}}
V2_CONFIG = {  # as configs/rec/ch_PP-OCRv2/ch_PP-OCRv2_rec_distillation.yml (the parts conversion reads)
    "Global": {"character_dict_path": "ppocr/utils/ppocr_keys_v1.txt", "use_space_char": True, "max_text_length": 25},
    "Architecture": {"model_type": "rec", "name": "DistillationModel", "algorithm": "Distillation",
                     "Models": {"Teacher": dict(V2_ARCH, pretrained=None, freeze_params=False),
                                "Student": dict(V2_ARCH, pretrained=None, freeze_params=False)}},
    "Eval": {"dataset": {"transforms": [{"DecodeImage": {"img_mode": "BGR"}}, {"CTCLabelEncode": None},
                                        {"RecResizeImg": {"image_shape": [3, 32, 320]}}]}},
}
V6_CONFIG = {  # as configs/rec/PP-OCRv6/PP-OCRv6_small_rec.yml
    "Global": {"model_name": "PP-OCRv6_small_rec", "character_dict_path": "ppocr/utils/dict/ppocrv6_dict.txt",
               "use_space_char": True, "max_text_length": 25, "d2s_train_image_shape": [3, 48, 320]},
    "Architecture": {"model_type": "rec", "algorithm": "SVTR_LCNet", "Transform": None,
                     "Backbone": {"name": "PPLCNetV4", "use_rep": True, "stem_type": "branch"},
                     "Head": {"name": "MultiHead", "head_list": [
                         {"CTCHead": {"Neck": {"name": "lightsvtr", "dims": 120, "depth": 2, "mlp_ratio": 2.0,
                                               "local_kernel": 7}, "Head": {"fc_decay": 1e-05}}},
                         {"NRTRHead": {"nrtr_dim": 384, "max_text_length": 25}}]}},
}


@pytest.fixture(scope="module")
def official(converted_dir, convert_official):
    return {n: convert_official(n, converted_dir) for n in ("ch_PP-OCRv2_rec", "PP-OCRv6_small_rec")}


def _write_yaml(path, cfg):
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def v2_distill(official, tmp_path_factory):
    d = tmp_path_factory.mktemp("v2")
    deploy = official["ch_PP-OCRv2_rec"][0]
    train = unfuse(deploy)
    student = paddle_state(train, prefix="Student.")
    rng = np.random.default_rng(0)
    teacher = {k.replace("Student.", "Teacher.", 1): (v + rng.normal(0, 0.01, v.shape)).astype(v.dtype)
               for k, v in student.items()}
    return save_pdparams({**student, **teacher}, d / "best_accuracy.pdparams"), _write_yaml(d / "cfg.yml", V2_CONFIG), train


@pytest.fixture(scope="module")
def v6_multihead(official, tmp_path_factory):
    d = tmp_path_factory.mktemp("v6")
    deploy = official["PP-OCRv6_small_rec"][0]
    rng = np.random.default_rng(1)
    nrtr = {"head.before_gtc.1.fc.weight": rng.normal(size=(384, 384)).astype(np.float32),
            "head.gtc_head.tgt_word_prj.weight": rng.normal(size=(384, 18711)).astype(np.float32)}
    state = paddle_state(unfuse(deploy), extra=nrtr)
    return save_pdparams(state, d / "PP-OCRv6_small_rec_pretrained.pdparams"), _write_yaml(d / "cfg.yml", V6_CONFIG)


def test_unfused_training_form_computes_the_official_function(official, v2_distill):
    deploy = official["ch_PP-OCRv2_rec"][0]
    train = v2_distill[2]
    x = torch.randn(1, 3, 32, 200)
    with torch.no_grad():
        assert torch.allclose(train(x), deploy(x), atol=1e-5)


@pytest.mark.parametrize("case", ["v2_distill", "v6_multihead"])
def test_training_checkpoint_converts_to_the_official_model(request, official, case):
    from conversion.convert import parity_inputs
    from conversion.parity import output_parity
    from conversion.training import convert_checkpoint

    name = {"v2_distill": "ch_PP-OCRv2_rec", "v6_multihead": "PP-OCRv6_small_rec"}[case]
    pdparams, cfg = request.getfixturevalue(case)[:2]
    model, notes = convert_checkpoint(pdparams, cfg, name=name)
    ref_model, _, onnx_path, *_ = official[name]
    assert model.spec.num_classes == ref_model.spec.num_classes and model.charset == ref_model.charset
    if case == "v2_distill":
        assert any("branch Student" in n for n in notes) and any("other distillation branch Teacher" in n for n in notes)
        assert any("LSTM alias" in n for n in notes)
    else:
        assert any("SAR/NRTR" in n for n in notes)
    report = output_parity(model, onnx_path, parity_inputs(model.spec, limit=25), model.charset)
    assert report["passed"], [i for i in report["items"] if not i["within"]][:3]
    assert report["text_agreement"] == 1.0


def test_wrong_dictionary_names_both_class_counts(v2_distill, tmp_path):
    from conversion.training import convert_checkpoint
    from ppocr_torch.errors import SpecMismatchError

    en = tmp_path / "en_dict.txt"
    en.write_text("\n".join("0123456789abcdefghijklmnopqrstuvwxyz") + "\n", encoding="utf-8")
    with pytest.raises(SpecMismatchError) as info:
        convert_checkpoint(v2_distill[0], v2_distill[1], dict_path=en)
    assert "6625" in str(info.value) and "38" in str(info.value)


def test_missing_space_char_is_named_as_the_likely_cause(v2_distill, tmp_path):
    from conversion.training import convert_checkpoint
    from ppocr_torch.errors import SpecMismatchError

    cfg = yaml.safe_load(v2_distill[1].read_text(encoding="utf-8"))
    cfg["Global"]["use_space_char"] = False
    with pytest.raises(SpecMismatchError) as info:
        convert_checkpoint(v2_distill[0], _write_yaml(tmp_path / "c.yml", cfg))
    assert "use_space_char" in str(info.value)


def test_wrong_family_is_refused(v2_distill, v6_multihead):
    from conversion.errors import ConversionError
    from conversion.training import convert_checkpoint

    with pytest.raises(ConversionError) as info:
        convert_checkpoint(v2_distill[0], v6_multihead[1], branch="Student")
    assert "family" in str(info.value) or "branch" in str(info.value)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(v6_multihead[0], v2_distill[1])
    assert "distillation" in str(info.value) or "family" in str(info.value)


def test_truncated_and_malicious_pdparams_are_refused(v2_distill, tmp_path):
    from conversion.errors import SourceFormatError
    from ppocr_torch.formats.pdparams import read_pdparams

    data = v2_distill[0].read_bytes()
    cut = tmp_path / "cut.pdparams"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceFormatError) as info:
        read_pdparams(cut)
    assert "cut.pdparams" in str(info.value)

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(SourceFormatError) as info:
        read_pdparams(evil)
    assert "not allowed" in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_inconsistent_lstm_alias_is_an_error(official, tmp_path):
    from conversion.errors import ConversionError
    from conversion.training import convert_checkpoint

    state = paddle_state(unfuse(official["ch_PP-OCRv2_rec"][0]))
    key = next(k for k in state if ".cell_bw.weight_hh" in k)
    state[key] = state[key] + 1
    cfg = dict(V2_CONFIG, Architecture=V2_ARCH)
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(save_pdparams(state, tmp_path / "x.pdparams"), cfg)
    assert key in str(info.value)


def test_reading_order_is_explicit_or_paddleocrs_rule_stated():
    """An own model's right-to-left display order: given by the caller, or PaddleOCR's decoder rule (reversed
    iff the dictionary path contains "arabic"), which is then stated in the notes."""
    import copy

    from conversion.config import spec_from_config

    cfg = copy.deepcopy(V6_CONFIG)
    cfg.setdefault("Global", {})["character_dict_path"] = "ppocr/utils/dict/arabic_dict.txt"
    chars = list("abc")
    spec, notes = spec_from_config(cfg, name="mine", dict_chars=chars)
    assert spec.extra.get("reverse_text") is True and any("--no-reverse-text" in n for n in notes)
    spec, notes = spec_from_config(cfg, name="mine", dict_chars=chars, reverse_text=False)
    assert "reverse_text" not in spec.extra and not any("reverse" in n for n in notes)
    cfg["Global"]["character_dict_path"] = "my_dict.txt"
    assert "reverse_text" not in spec_from_config(cfg, name="mine", dict_chars=chars)[0].extra
    assert spec_from_config(cfg, name="mine", dict_chars=chars, reverse_text=True)[0].extra["reverse_text"] is True
