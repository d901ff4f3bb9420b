"""The deploy form is inference only: training mode and gradients are refused
with an error that says to train the training form."""
import pytest
import torch

from mmdice.models import DiCENet, switch_to_deploy

TRAINING_FORM_HINT = 'deploy=False'


def deploy_dicenet():
    return DiCENet(0.2, input_size=64, out_indices=(2, 4), deploy=True)


def test_deploy_dicenet_refuses_training_mode():
    with pytest.raises(RuntimeError, match=r'DiCENet is in its deploy form.*training mode') as error:
        deploy_dicenet().train()
    assert TRAINING_FORM_HINT in str(error.value)


def test_model_containing_a_deploy_form_refuses_training_mode():
    model = torch.nn.Sequential(switch_to_deploy(DiCENet(0.2, input_size=64)))
    with pytest.raises(RuntimeError, match='DiCENet is in its deploy form'):
        model.train()


def test_training_form_and_eval_mode_still_switch():
    DiCENet(0.2, input_size=64).train().eval().train()
    deployed = deploy_dicenet().eval()
    assert deployed.train(False) is deployed and not deployed.training


def test_deploy_eval_without_gradients_runs():
    deployed = deploy_dicenet().eval()
    with torch.no_grad():
        outs = deployed(torch.randn(1, 3, 64, 64))
    assert [tuple(out.shape[:2]) for out in outs] == [(1, deployed.out_channels[0]),
                                                     (1, deployed.out_channels[1])]
    with torch.inference_mode():
        deployed(torch.randn(1, 3, 64, 64))


def test_deploy_eval_with_gradients_refuses_clearly():
    deployed = deploy_dicenet().eval()
    with pytest.raises(RuntimeError, match=r'DiCEUnit is in its deploy form.*torch\.no_grad'):
        deployed(torch.randn(1, 3, 64, 64))
    for parameter in deployed.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(RuntimeError, match='cannot compute gradients'):
        deployed(torch.randn(1, 3, 64, 64, requires_grad=True))
    deployed(torch.randn(1, 3, 64, 64))  # frozen and no input gradient: nothing to refuse
