# Aggregation, the paper's statistics, tables and figures, and the comparison with the
# authors' published per-run results.


rule manifest:
    """The list of every training job's result.json: aggregates read it, not 17,000 inputs each."""

    # A function, not the list: a list is built into 17,000 (an archive study: 300,000)
    # input files whenever the Snakefile parses, in every cluster job too; a function runs
    # only when the DAG holds this job (bench/archive_dag.py, "parse").
    input:
        lambda wildcards: all_results(),
    output:
        MANIFEST,
    log:
        "results/logs/manifest.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=10,
        mem_mb=1000,
    script:
        "../workflow/scripts/write_manifest.py"


rule results_table:
    """One tidy row per trained model (Parquet and CSV)."""
    input:
        MANIFEST,
    output:
        parquet=f"{TABLES_DIR}/results.parquet",
        csv=report(
            f"{TABLES_DIR}/results.csv",
            caption="../report/results_table.rst",
            category="Results table",
        ),
        html=report(
            f"{TABLES_DIR}/results.html",
            caption="../report/results_table.rst",
            category="Results table",
        ),
    log:
        "results/logs/results_table.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    script:
        "../workflow/scripts/results_table.py"


rule analysis:
    """Tables 2-10 and Figure 8 of the paper, plus heatmaps, from our own results."""
    input:
        f"{TABLES_DIR}/results.parquet",
    output:
        tables=report(
            directory(f"{ANALYSIS_DIR}/tables"),
            patterns=["{name}.html", "{name}.csv"],
            caption="../report/tables.rst",
            category="Tables",
        ),
        figures=report(
            directory(f"{ANALYSIS_DIR}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
        done=touch(f"{ANALYSIS_DIR}/done"),
    log:
        "results/logs/analysis.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        protocol=SELECTION,
        out=lambda wc, output: os.path.dirname(output.done),
        referent_check=config.get("referent_check"),
    script:
        "../workflow/scripts/analysis.py"


rule download_published:
    """The authors' repository archive, when config published_results is a URL."""
    output:
        PUBLISHED_DOWNLOAD,
    log:
        "results/logs/download/published_results.log",
    conda:
        "../envs/data.yaml"
    resources:
        runtime=60,
        mem_mb=1000,
    params:
        spec=lambda wc: {
            "url": config["published_results"],
            "sha256": None,
            "size": None,
        },
    script:
        "../workflow/scripts/download.py"


rule published_table:
    """The authors' per-run results (their our_models/*/metrics.json) as the same tidy table."""
    input:
        published_input,
    output:
        parquet="results/published/results.parquet",
        csv="results/published/results.csv",
    log:
        "results/logs/published_table.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    script:
        "../workflow/scripts/published_table.py"


rule published_analysis:
    """The same statistics on the authors' results: reproduces the paper's Tables 6-10."""
    input:
        "results/published/results.parquet",
    output:
        tables=directory("results/published/analysis/tables"),
        figures=directory("results/published/analysis/figures"),
        done=touch("results/published/analysis/done"),
    log:
        "results/logs/published_analysis.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        protocol="paper",
        out=lambda wc, output: os.path.dirname(output.done),
        # The script is analysis's, which reads this param; the authors' referents are
        # not checked against the figures they published themselves.
        referent_check=None,
    script:
        "../workflow/scripts/analysis.py"


rule comparison:
    """Our results beside the published ones, cell by cell."""
    input:
        ours=f"{TABLES_DIR}/results.parquet",
        published="results/published/results.parquet",
    output:
        tables=report(
            f"{ANALYSIS_DIR}/comparison_with_published.csv",
            caption="../report/comparison.rst",
            category="Comparison with the paper",
        ),
        referents=report(
            f"{ANALYSIS_DIR}/comparison_referents_with_published.csv",
            caption="../report/comparison_referents.rst",
            category="Comparison with the paper",
        ),
        tables_html=report(
            f"{ANALYSIS_DIR}/comparison_with_published.html",
            caption="../report/comparison.rst",
            category="Comparison with the paper",
        ),
        referents_html=report(
            f"{ANALYSIS_DIR}/comparison_referents_with_published.html",
            caption="../report/comparison_referents.rst",
            category="Comparison with the paper",
        ),
    log:
        "results/logs/comparison.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        protocol=SELECTION,
        label=PROTOCOL_LABEL,
    script:
        "../workflow/scripts/comparison.py"


rule summary:
    """The report's first page: the gain heatmap beside the source-selection estimators'
    validation (when configured), sign tests, significant cells, protocol, run size and the
    comparison with the published results (when imported)."""
    input:
        results=f"{TABLES_DIR}/results.parquet",
        comparison=(
            [f"{ANALYSIS_DIR}/comparison_with_published.csv"]
            if config["published_results"]
            else []
        ),
        selection=(
            [f"{ANALYSIS_DIR}/selection_validation_summary.csv"]
            if SELECTION_ESTIMATORS
            else []
        ),
    output:
        html=report(
            f"{ANALYSIS_DIR}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
        json=f"{ANALYSIS_DIR}/summary_page.json",
        heatmap=f"{ANALYSIS_DIR}/summary_heatmap.png",
        heatmap_svg=f"{ANALYSIS_DIR}/summary_heatmap.svg",
    log:
        "results/logs/summary.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        protocol=SELECTION,
        label=PROTOCOL_LABEL,
        switches=RECORDED_SWITCHES,
        expected_jobs=expected_jobs,
        referent_check=config.get("referent_check"),
    script:
        "../workflow/scripts/summary.py"
