# DiCENet s=1.0 in its deploy (inference) form: load a checkpoint converted by
# tools/model_converters/reparameterize_model.py from configs/dicenet/dicenet-s1.0_8xb64_in1k.py.
_base_ = '../dicenet-s1.0_8xb64_in1k.py'

model = dict(backbone=dict(deploy=True))
