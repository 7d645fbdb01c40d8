# Raw data (download or synthetic) -> one zarr store per dataset -> per-run training subsets.


rule download:
    """One raw file of a dataset from its official source: resumable, checksum-verified."""
    output:
        f"{RAW_DIR}/{{dataset}}/{{filename}}",
    log:
        "results/logs/download/{dataset}/{filename}.log",
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
        "results/logs/synthesize/{dataset}.log",
    conda:
        "../envs/data.yaml"
    resources:
        runtime=30,
        mem_mb=2000,
    params:
        synthetic=lambda wc: config["synthetic"][wc.dataset],
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
        "results/logs/convert/{dataset}.log",
    benchmark:
        "results/benchmarks/convert/{dataset}.tsv"
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
        "results/logs/subset/{dataset}/{variant}/run{run}.log",
    conda:
        "../envs/data.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    params:
        size=lambda wc: config["variants"][wc.variant],
        seed=config["seed"],
    script:
        "../workflow/scripts/subset.py"
