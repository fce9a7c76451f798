"""Backbones: offline ImageNet weights for EfficientNet-Lite0, clear errors otherwise."""
import pytest
import torch
import torch.nn.functional as F

from streamact.models import backbone_cfg, create_backbone, list_backbones

skimage_data = pytest.importorskip("skimage.data")


def _preprocess(image, name):
    """Real-time protocol: resize the short side to 224 / 0.875, centre crop 224, normalise."""
    cfg = backbone_cfg(name)
    size = cfg.input_size[1]
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255).unsqueeze(0)  # (1, 3, H, W)
    h, w = x.shape[-2:]
    scale = size / cfg.crop_pct / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True,
                      align_corners=False)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top : top + size, left : left + size]
    return (x - torch.tensor(cfg.mean).view(3, 1, 1)) / torch.tensor(cfg.std).view(3, 1, 1)


def test_efficientnet_lite0_imagenet_weights_classify_photos():
    model = create_backbone("efficientnet_lite0", pretrained=True, num_classes=1000).eval()
    with torch.no_grad():
        cat = model(_preprocess(skimage_data.chelsea(), "efficientnet_lite0")).argmax().item()
        coffee = model(_preprocess(skimage_data.coffee(), "efficientnet_lite0")).argmax().item()
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in (967, 968)  # espresso, cup


def test_pretrained_backbone_with_new_classifier_keeps_features():
    full = create_backbone("efficientnet_lite0", pretrained=True, num_classes=1000).eval()
    feats = create_backbone("efficientnet_lite0", pretrained=True).eval()
    new = create_backbone("efficientnet_lite0", pretrained=True, num_classes=7)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(feats(x), full.forward_head(full.forward_features(x), pre_logits=True))
    assert new.get_classifier().out_features == 7


def test_backbone_errors():
    assert set(list_backbones()) == {"mobilenetv2_100", "mnasnet_100", "efficientnet_lite0", "resnet18", "resnet34",
                                    "resnet50"}
    for name in ("mobilenetv2_100", "mnasnet_100", "resnet18", "resnet50"):
        with pytest.raises(ValueError, match="no ImageNet weights.*efficientnet_lite0"):
            create_backbone(name, pretrained=True)
    with pytest.raises(KeyError, match="resnet50"):
        create_backbone("resnet_50")
    with pytest.raises(ValueError, match="does not match"):  # order-mapped weights are shape-checked
        create_backbone("efficientnet_lite0", pretrained=True, in_chans=1)
