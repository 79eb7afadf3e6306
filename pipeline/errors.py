"""The project's own error types: the CLI shows their message as one `Error: ...` line."""


class PipelineError(Exception):
    """A failure the user can act on (bad input, missing data, an unreachable source)."""


class DataFormatError(PipelineError):
    """A data file is truncated, malformed or not what its name says."""


class DownloadError(PipelineError):
    """No source could deliver a verified copy of a dataset file."""


class ConfigError(PipelineError):
    """`params.yaml` (or an option) holds a value the pipeline cannot use; names the key."""


class TrainingError(PipelineError):
    """Training cannot go on (a non-finite loss, an unusable checkpoint)."""


class SamplerError(PipelineError):
    """The model file or a sampling request is not usable."""


class ModelOutputError(SamplerError):
    """A model gave values that are not finite: the file, not the request, is at fault."""


class ExportError(PipelineError):
    """The ONNX export failed its checks; nothing was written."""


class ContractError(SamplerError):
    """A model file breaks the generator's ONNX contract (`pipeline.runtime.contract`)."""


class ClassifierError(PipelineError):
    """A classifier model file or the images given to it are not usable."""


class ImageInputError(PipelineError):
    """Images given to an exported model are missing, unreadable or of the wrong size."""


class EncoderError(PipelineError):
    """An encoder model file is not usable, or does not fit the generator it is paired with."""


class WriteError(PipelineError):
    """A file could not be written (a full disk, a read-only folder, a size limit); the previous
    file, if any, is unchanged."""
