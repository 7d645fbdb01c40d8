"""Synthetic raw data: one generator module per dataset, named like its reader.

``synthetic.<name>.write_synthetic(raw, params, rng)`` writes small raw files of dataset
``<name>`` in exactly the real on-disk format, with learnable structure, for the
embedded default (``raw_data: synthetic``); ``params`` is the config's
``synthetic.<name>`` mapping. :func:`tstransfer.datasets.write_synthetic` (which
``pipeline.synthesize`` calls) finds the generator by the dataset's name and imports it
only then, so the readers, which every training job imports, do not load the generators.
The generators import the format's constants (file names, groups, columns) from their
readers, so the two cannot disagree; a reader never imports its generator.

:mod:`._seismic` is the earthquake generator the three seismic datasets share.
"""
