# Source selection validated on this study (src/tstransfer/zoo/study.py): every zoo model
# scored on each target's run-0 training subset by the estimators of config
# selection.estimators, then beside the measured mean gains (the harness of
# tstransfer.selection.validation). The summary page shows the validation's table.
# Planned when selection.estimators names any (all_targets, rules/common.smk). The
# fine-tuning proxy (finetune_proxy, in `all`) trains nothing: selection_proxy reads it
# from the study's own run-0 fine-tuning histories (config selection.proxy).


rule selection_scores:
    """Each estimator's score of every compatible (arch, source, target, variant); each zoo model loaded once."""
    input:
        index=f"{ZOO_DIR}/index.json",
        stores=expand(STORE, dataset=SELECTION_DATASETS),
        subsets=expand(SUBSET, dataset=TARGETS, variant=VARIANTS, run=0),
    output:
        f"{ANALYSIS_DIR}/selection_scores.csv",
    log:
        "results/logs/selection_scores.log",
    conda:
        "../envs/training.yaml"
    resources:
        runtime=60,
        mem_mb=4000,
    params:
        estimators=SELECTION_MODEL_SCORES,
        seed=config["seed"],
        targets=[
            [t, v, STORE.format(dataset=t), SUBSET.format(dataset=t, variant=v, run=0)]
            for t in TARGETS
            for v in VARIANTS
        ],
        source_stores={s: STORE.format(dataset=s) for s in SOURCES},
    script:
        "../workflow/scripts/selection_scores.py"


rule selection_proxy:
    """The fine-tuning proxy of every (arch, source, target, variant): its run 0 at
    selection.proxy.omega, as a run of selection.proxy.epochs epochs would have ended.
    """
    input:
        MANIFEST,
    output:
        f"{ANALYSIS_DIR}/selection_proxy_scores.csv",
    log:
        "results/logs/selection_proxy.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        epochs=PROXY_SETTINGS["epochs"],
        omega=PROXY_SETTINGS["omega"],
        max_epochs=config["training"]["max_epochs"],
    script:
        "../workflow/scripts/selection_proxy.py"


rule selection_validation:
    """Per estimator and target: Spearman with the mean gain, top-1 hit, regret; the summary with a random pick."""
    input:
        scores=(
            [f"{ANALYSIS_DIR}/selection_scores.csv"] if SELECTION_MODEL_SCORES else []
        )
        + ([f"{ANALYSIS_DIR}/selection_proxy_scores.csv"] if SELECTION_PROXY else []),
        results=f"{TABLES_DIR}/results.parquet",
    output:
        per_target=f"{ANALYSIS_DIR}/selection_validation.csv",
        summary=f"{ANALYSIS_DIR}/selection_validation_summary.csv",
    log:
        "results/logs/selection_validation.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        protocol=SELECTION,
    script:
        "../workflow/scripts/selection_validation.py"
