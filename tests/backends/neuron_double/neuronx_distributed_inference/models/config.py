class NeuronConfig:
    def __init__(self, **kwargs):
        self.tp_degree = kwargs.pop("tp_degree", 1)
        self.batch_size = kwargs.pop("batch_size", 1)
        self.max_context_length = kwargs.pop("max_context_length", 128)
        self.seq_len = kwargs.pop("seq_len", 128)
        self.torch_dtype = kwargs.pop("torch_dtype", None)
        self.__dict__.update(kwargs)
        self.max_length = self.seq_len


class OnDeviceSamplingConfig:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
