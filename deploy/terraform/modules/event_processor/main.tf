# parqour event processor: one data type's closed partitions -> Athena-ready Parquet.
#
# SNS "partition closed" -> trigger Lambda (writes the manifest, submits the job)
#   -> Batch job queue -> Fargate job `parqour run --manifest <url>` -> table + _SUCCESS marker.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name      = coalesce(var.name, "parqour-${var.data_type}")
  s3        = "arn:${data.aws_partition.current.partition}:s3:::"
  raw_url   = "s3://${var.raw_bucket}/${var.raw_prefix}${var.raw_layout}"
  table_url = "s3://${var.table_bucket}/${var.table_prefix}"

  # The image's ECR repository, for the jobs' pull permissions (null for other registries).
  ecr = try(regex("^([0-9]+)\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com/([^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    data.aws_partition.current.partition, local.ecr[1], local.ecr[0], local.ecr[2]
  )

  registry_url    = var.registry_bucket == null ? null : "s3://${var.registry_bucket}/${trimsuffix(var.registry_prefix, "/")}"
  dead_letter_url = var.dead_letter_bucket == null ? null : "s3://${var.dead_letter_bucket}/${trimsuffix(var.dead_letter_prefix, "/")}"

  # The trigger's settings: the same variables as `parqour trigger`. The registry and the
  # dead-letter place go into every manifest it writes.
  trigger_environment = merge(
    {
      PARQOUR_TABLE          = local.table_url
      PARQOUR_RAW_PREFIX     = local.raw_url
      PARQOUR_PARTITION      = join(",", var.partition)
      PARQOUR_DATA_TYPE      = var.data_type
      PARQOUR_JOB_QUEUE      = aws_batch_job_queue.this.arn
      PARQOUR_JOB_DEFINITION = aws_batch_job_definition.this.arn
      PARQOUR_LOG_FORMAT     = "json"
    },
    local.registry_url == null ? {} : { PARQOUR_REGISTRY = local.registry_url },
    local.dead_letter_url == null ? {} : { PARQOUR_DEAD_LETTER = local.dead_letter_url },
  )
}
