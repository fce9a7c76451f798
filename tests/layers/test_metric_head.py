"""Metric head: L2-normalised embedding, cosine classifier, scaled logits for inference."""
import math

import pytest
import torch

from streamact.layers.metric_head import CosineClassifier, MetricHead, cosine_similarity_matrix


def test_cosine_matrix_by_hand():
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    centres = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(cosine_similarity_matrix(emb, centres), torch.tensor([[1.0, r], [0.0, r]]))


def test_cosines_are_clamped():
    v = torch.randn(64, 7, dtype=torch.float32) * 1e3
    cos = cosine_similarity_matrix(v, torch.cat([v, -v]))
    assert cos.max() <= 1.0 and cos.min() >= -1.0
    torch.testing.assert_close(cos.diagonal(), torch.ones(64))


def test_classifier_init_has_unit_centres():
    clf = CosineClassifier(16, 5)
    assert clf.weight.shape == (5, 16) and clf.num_classes == 5
    torch.testing.assert_close(clf.weight.norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match=">= 1"):
        CosineClassifier(16, 0)


def test_head_outputs():
    head = MetricHead(32, 6, embed_dim=8, inference_scale=5.0)
    feats = torch.randn(4, 32)
    cos, emb = head.forward_metric(feats)
    assert cos.shape == (4, 6) and emb.shape == (4, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(cos, emb @ torch.nn.functional.normalize(head.weight, dim=1).t())
    torch.testing.assert_close(head(feats), 5.0 * cos)
    assert head.weight is head.classifier.weight and head.num_classes == 6
    assert head.embed.bias is None  # the reference's bias-free 1x1x1 conv
    head(feats).sum().backward()
    assert head.weight.grad is not None and head.embed.weight.grad.abs().sum() > 0


def test_head_rejects_bad_scale():
    with pytest.raises(ValueError, match="inference_scale"):
        MetricHead(8, 2, inference_scale=0.0)
