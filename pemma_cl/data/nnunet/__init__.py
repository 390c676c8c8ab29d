"""A PET/CT dataset in nnU-Net's raw layout plus a case table (``--data nnunet:DIR``): layout and ``dataset.json``,
the case table, preparation (checks, resampling, cache) and loading."""
