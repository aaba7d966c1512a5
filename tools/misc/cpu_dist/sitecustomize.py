"""Lets mmengine's ``--launcher pytorch`` run on a torch *without* CUDA.

mmengine 0.10 assumes a GPU per process: its launcher calls
``torch.cuda.set_device(LOCAL_RANK)`` and its Runner wraps the model in DDP
with ``device_ids=[LOCAL_RANK]``; on a CPU-only torch the first raises and
DDP rejects the second for a CPU module. Put this directory on PYTHONPATH
(Python imports ``sitecustomize`` at start-up) and use the gloo backend to
debug multi-process training on CPU:

    PYTHONPATH=tools/misc/cpu_dist:. torchrun --nproc_per_node 2 \\
        $(python -c 'import mmdet,os;print(os.path.dirname(mmdet.__file__))')/.mim/tools/train.py \\
        CONFIG --launcher pytorch --cfg-options env_cfg.dist_cfg.backend=gloo

With CUDA available it changes nothing.
"""
try:
    import torch
except ImportError:  # not a torch process
    torch = None

if torch is not None and not torch.cuda.is_available():
    from torch.nn.parallel import DistributedDataParallel

    torch.cuda.set_device = lambda device: None
    _ddp_init = DistributedDataParallel.__init__

    def _cpu_ddp_init(self, module, device_ids=None, output_device=None,
                      *args, **kwargs):
        if all(p.device.type == 'cpu' for p in module.parameters()):
            device_ids = output_device = None  # DDP's rule for CPU modules
        _ddp_init(self, module, device_ids, output_device, *args, **kwargs)

    DistributedDataParallel.__init__ = _cpu_ddp_init
