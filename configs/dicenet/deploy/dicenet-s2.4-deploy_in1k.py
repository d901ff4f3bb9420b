# DiCENet s=2.4 in its deploy (inference) form: load a checkpoint converted by
# tools/model_converters/reparameterize_model.py from configs/dicenet/dicenet-s2.4_8xb64_in1k.py.
_base_ = '../dicenet-s2.4_8xb64_in1k.py'

model = dict(backbone=dict(deploy=True))
