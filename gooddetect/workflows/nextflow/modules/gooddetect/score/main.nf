process GOODDETECT_SCORE {
    tag "$meta.id"
    label 'process_medium'

    // No bioconda package or container yet: put `gooddetect` on PATH, or set `container` for this process
    // in your config (e.g. withName: 'GOODDETECT_SCORE' { container = 'my/gooddetect:0.3.0' }).

    input:
    tuple val(meta), path(reads)
    path(model)

    output:
    tuple val(meta), path("*.tsv")         , emit: scores
    tuple val(meta), path("*.report.txt")  , emit: report
    tuple val(meta), path("*.summary.json"), emit: summary
    tuple val(meta), path("*_mqc.json")    , emit: multiqc
    path "versions.yml"                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def layout = meta.single_end ? '' : '--paired'
    """
    gooddetect \\
        score \\
        $args \\
        $layout \\
        --threads $task.cpus \\
        --output ${prefix}.tsv \\
        --report ${prefix}.report.txt \\
        --summary ${prefix}.summary.json \\
        --multiqc ${prefix}_mqc.json \\
        --sample-name ${prefix} \\
        $model \\
        $reads

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gooddetect: \$(gooddetect --version | sed 's/^gooddetect, version //')
    END_VERSIONS
    """

    stub:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo $args
    touch ${prefix}.tsv
    touch ${prefix}.report.txt
    touch ${prefix}.summary.json
    touch ${prefix}_mqc.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gooddetect: \$(gooddetect --version | sed 's/^gooddetect, version //')
    END_VERSIONS
    """
}
