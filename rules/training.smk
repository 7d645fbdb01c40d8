# Pretraining (with seed selection), referent models, the fine-tuning grid, and the
# stream_max study. Every training job writes result.json last: its presence marks a
# finished job. Training runs through `python -m tstransfer.cli` (the interpreter is
# $TSTRANSFER_PYTHON, the package the workflow's src/ at $TSTRANSFER_SRC, rules/common.smk), a client that hands
# the job to a warm job server when one runs (config job_server) and otherwise runs it
# in-process; see src/tstransfer/jobserver.py. Each job gets exactly the config values
# that shape it (cli_args, rules/common.smk) as params, so a config change reruns only
# the jobs it affects. Each rule's name is its kind in tstransfer.plan (plan.KINDS), whose
# record gives the rule's result path, log, benchmark and the job's CLI arguments.
# A job's TensorFlow uses exactly its rule's threads (1, unless a profile's set-threads
# says otherwise): by default it takes every core, and jobs side by side then share
# them at a loss (tstransfer.jobs.limit_threads).


rule pretrain:
    input:
        store=STORE.replace("{dataset}", "{source}"),
    output:
        result=plan.KINDS["pretrain"].output,
        model=f"{PRETRAIN_DIR}/model.keras",
    log:
        plan.KINDS["pretrain"].log,
    benchmark:
        plan.KINDS["pretrain"].benchmark
    conda:
        "../envs/training.yaml"
    resources:
        runtime=48 * 60,
        mem_mb=32000,
        gpu=1,
    params:
        args=lambda wc: cli_args("pretrain", wc),
    shell:
        'PYTHONPATH="$TSTRANSFER_SRC" "$TSTRANSFER_PYTHON" -m tstransfer.cli pretrain {params.args}'
        " --threads {threads}"
        " --store {input.store:q} > {log} 2>&1"


rule select_pretrained:
    """The best of the pretraining seeds on validation, or on test with switch
    select_seed_on_test (the authors picked by hand)."""
    input:
        results=expand(plan.KINDS["pretrain"].output, seed=SEEDS, allow_missing=True),
        models=expand(f"{PRETRAIN_DIR}/model.keras", seed=SEEDS, allow_missing=True),
    output:
        selection=plan.KINDS["select_pretrained"].output,
        model=SELECTED_MODEL,
    log:
        plan.KINDS["select_pretrained"].log,
    conda:
        "../envs/data.yaml"
    resources:
        runtime=5,
        mem_mb=500,
    params:
        **SELECT_SWITCHES,
    script:
        SELECT_SCRIPT


rule referent:
    """A model trained from scratch on a reduced target training set."""
    input:
        store=STORE.replace("{dataset}", "{target}"),
        subset=SUBSET.replace("{dataset}", "{target}"),
    output:
        result=plan.KINDS["referent"].output,
    log:
        plan.KINDS["referent"].log,
    benchmark:
        plan.KINDS["referent"].benchmark
    conda:
        "../envs/training.yaml"
    resources:
        runtime=8 * 60,
        mem_mb=16000,
        gpu=1,
    params:
        args=lambda wc: cli_args("referent", wc),
    shell:
        'PYTHONPATH="$TSTRANSFER_SRC" "$TSTRANSFER_PYTHON" -m tstransfer.cli referent {params.args}'
        " --threads {threads}"
        " --store {input.store:q} --subset {input.subset:q} > {log} 2>&1"


rule finetune:
    """One grid cell: the selected pretrained model fine-tuned with multiplier omega."""
    input:
        pretrained=SELECTED_MODEL,
        store=STORE.replace("{dataset}", "{target}"),
        subset=SUBSET.replace("{dataset}", "{target}"),
    output:
        result=plan.KINDS["finetune"].output,
    log:
        plan.KINDS["finetune"].log,
    benchmark:
        plan.KINDS["finetune"].benchmark
    # No group: here. Packing on SLURM is chosen on the command line (README, "One job
    # per grid cell, or packed"): --groups finetune=ft_{arch}_{source}_{target}_{variant}_{run}
    # with --group-components ...=10 puts the ten multipliers of one run into one
    # allocation. A group directive would make every dry run and unpacked run build
    # 16,800 one-job groups (+15-19% of the DAG's time, bench/dag.py).
    conda:
        "../envs/training.yaml"
    resources:
        runtime=8 * 60,
        mem_mb=16000,
        gpu=1,
    params:
        args=lambda wc: cli_args("finetune", wc),
    shell:
        'PYTHONPATH="$TSTRANSFER_SRC" "$TSTRANSFER_PYTHON" -m tstransfer.cli finetune {params.args}'
        " --threads {threads}"
        " --pretrained {input.pretrained:q} --store {input.store:q}"
        " --subset {input.subset:q} > {log} 2>&1"


rule stream_max:
    """Table 2: the same training with and without the stream_max input."""
    input:
        store=STORE,
    output:
        result=plan.KINDS["stream_max"].output,
    log:
        plan.KINDS["stream_max"].log,
    benchmark:
        plan.KINDS["stream_max"].benchmark
    conda:
        "../envs/training.yaml"
    resources:
        runtime=48 * 60,
        mem_mb=32000,
        gpu=1,
    params:
        args=lambda wc: cli_args("stream_max", wc),
    shell:
        'PYTHONPATH="$TSTRANSFER_SRC" "$TSTRANSFER_PYTHON" -m tstransfer.cli stream_max {params.args}'
        " --threads {threads}"
        " --store {input.store:q} > {log} 2>&1"
