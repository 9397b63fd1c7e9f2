process GOODDETECT_SCREEN {
    tag "$meta.id"
    label 'process_medium'

    // No bioconda package or container yet: put `gooddetect` on PATH, or set `container` for this process
    // in your config (e.g. withName: 'GOODDETECT_SCREEN' { container = 'my/gooddetect:0.3.0' }).

    input:
    tuple val(meta), path(sequences)
    path(model)

    output:
    tuple val(meta), path("*.report.tsv")   , emit: report
    tuple val(meta), path("*.foreign.bed")  , emit: bed
    tuple val(meta), path("*.clean.fa.gz")  , emit: clean
    tuple val(meta), path("*_mqc.json")     , emit: multiqc
    path "versions.yml"                     , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    gooddetect \\
        screen \\
        $args \\
        --threads $task.cpus \\
        --output ${prefix}.report.tsv \\
        --bed ${prefix}.foreign.bed \\
        --clean-out ${prefix}.clean.fa.gz \\
        --multiqc ${prefix}_mqc.json \\
        --sample-name ${prefix} \\
        $model \\
        $sequences

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
    touch ${prefix}.report.tsv
    touch ${prefix}.foreign.bed
    echo -n | gzip > ${prefix}.clean.fa.gz
    touch ${prefix}_mqc.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        gooddetect: \$(gooddetect --version | sed 's/^gooddetect, version //')
    END_VERSIONS
    """
}
