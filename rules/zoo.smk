# The pretrained-model zoo (`snakemake zoo`): the selected pretrained models with their
# model cards, an index and checksums, in one folder that can be archived or published
# alone (src/tstransfer/zoo/). Part of `all` where config selection.estimators names any
# (rules/selection.smk scores its models), else asked for by name. Its paths are
# ZOO_DIR and ZOO_MODEL_DIR of tstransfer.layout (rules/common.smk).


rule zoo_model:
    """One selected pretrained model, its card (JSON, Markdown, README.md for model hubs) and its weights' sha256."""
    input:
        selection=f"{SELECTED_DIR}/selection.json",
        model=SELECTED_MODEL,
        store=STORE.replace("{dataset}", "{source}"),
    output:
        model=f"{ZOO_MODEL_DIR}/model.keras",
        card=f"{ZOO_MODEL_DIR}/card.json",
        card_md=f"{ZOO_MODEL_DIR}/card.md",
        card_readme=f"{ZOO_MODEL_DIR}/README.md",
    log:
        "results/logs/zoo/{arch}-{source}.log",
    conda:
        "../envs/data.yaml"
    resources:
        runtime=5,
        mem_mb=1000,
    params:
        raw_data=config["raw_data"],
    script:
        "../workflow/scripts/zoo.py"


rule zoo:
    """Every selected pretrained model (architectures x sources), index.json and SHA256SUMS."""
    input:
        cards=expand(f"{ZOO_MODEL_DIR}/card.json", arch=ARCHS, source=SOURCES),
    output:
        index=f"{ZOO_DIR}/index.json",
        sums=f"{ZOO_DIR}/SHA256SUMS",
    log:
        "results/logs/zoo/index.log",
    conda:
        "../envs/data.yaml"
    resources:
        runtime=5,
        mem_mb=1000,
    params:
        protocol={
            "seed": config["seed"],
            "training": config["training"],
            "protocol": config["protocol"],
            "switches": RECORDED_SWITCHES,
            "runs": config["runs"],
            "omegas": config["omegas"],
            "variants": config["variants"],
        },
    script:
        "../workflow/scripts/zoo.py"
