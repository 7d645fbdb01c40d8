# Raw data (download or synthetic) -> one zarr store per dataset -> per-run training subsets.
# Logs and benchmarks are tstransfer.plan's (plan.KINDS), the jobs `progress` looks at.


rule download:
    """One raw file of a dataset from its official source: resumable, checksum-verified."""
    output:
        RAW_FILE.format(raw_dir=RAW_DIR, dataset="{dataset}", filename="{filename}"),
    log:
        plan.KINDS["download"].log,
    conda:
        "../envs/data.yaml"
    resources:
        runtime=24 * 60,
        mem_mb=1000,
    params:
        spec=download_spec,
    script:
        "../workflow/scripts/download.py"


rule synthesize:
    """Small raw files in the dataset's real on-disk format, with learnable structure."""
    output:
        directory(f"{SYNTHETIC_DIR}/{{dataset}}"),
    log:
        plan.KINDS["synthesize"].log,
    conda:
        "../envs/data.yaml"
    resources:
        runtime=30,
        mem_mb=2000,
    params:
        synthetic=synthetic_settings,
        seed=config["seed"],
    script:
        "../workflow/scripts/synthesize.py"


rule convert:
    """The paper's extraction and normalisation, streamed into a zarr store."""
    input:
        raw_input,
    output:
        directory(STORE),
    log:
        plan.KINDS["convert"].log,
    benchmark:
        plan.KINDS["convert"].benchmark
    conda:
        "../envs/data.yaml"
    resources:
        runtime=12 * 60,
        mem_mb=4000,
    params:
        raw=raw_folder,
        extract=lambda wc: extract_settings(wc.dataset),
        seed=config["seed"],
    script:
        "../workflow/scripts/convert.py"


rule subset:
    """One run's reduced training set (1k5, 9k) and its own mask."""
    input:
        STORE,
    output:
        SUBSET,
    log:
        plan.KINDS["subset"].log,
    conda:
        "../envs/data.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    params:
        **SUBSET_SWITCHES,
        size=lambda wc: config["variants"][wc.variant],
        seed=config["seed"],
    script:
        SUBSET_SCRIPT
