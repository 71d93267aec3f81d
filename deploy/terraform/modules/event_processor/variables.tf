variable "data_type" {
  description = "The data type this processor converts, e.g. `events`: names the resources and fills `{data_type}` in the templates."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.data_type))
    error_message = "data_type: letters, digits, `_`, `-` and `.`."
  }
}

variable "name" {
  description = "Prefix of every resource name (default `parqour-<data_type>`)."
  type        = string
  default     = null
}

variable "image" {
  description = "The parqour image (built from docker/Dockerfile, with `parqour` and `parqour-lambda`), e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/parqour:0.1.0`. Used by the Batch jobs and the trigger Lambda function."
  type        = string
}

variable "trigger_image" {
  description = "The image of the trigger Lambda function (default: image). Lambda takes only single-architecture images (no image index, no build attestations): push e.g. `parqour:0.1.0-arm64` with `docker buildx build --platform linux/arm64 --provenance=false`; its architecture must be `architecture`."
  type        = string
  default     = null
}

variable "architecture" {
  description = "CPU architecture of the jobs and the trigger: `arm64` (Graviton) or `x86_64`. The image must have it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: arm64 or x86_64."
  }
}

variable "raw_bucket" {
  description = "Bucket of the raw Avro objects."
  type        = string
}

variable "raw_prefix" {
  description = "Key prefix of this data type's raw objects, ending in `/` (e.g. `events/`). Jobs and the trigger may read under it, nothing else of the bucket."
  type        = string
}

variable "raw_layout" {
  description = "Template of one hour's objects under raw_prefix: the trigger's and backfill's raw prefix is `s3://<raw_bucket>/<raw_prefix><raw_layout>`."
  type        = string
  default     = "{yyyy}/{MM}/{dd}/{HH}/"
}

variable "table_bucket" {
  description = "Bucket of the Parquet table."
  type        = string
}

variable "table_prefix" {
  description = "Key prefix of the table, without a trailing `/` (e.g. `events`): the table is `s3://<table_bucket>/<table_prefix>`; manifests go under `<table_prefix>/_manifests/`."
  type        = string
}

variable "partition" {
  description = "Partition keys and value templates, in order."
  type        = list(string)
  default     = ["dt={yyyy}-{MM}-{dd}", "hour={HH}"]
}

variable "registry_bucket" {
  description = "Bucket of the schema registry (read by the jobs); null for none."
  type        = string
  default     = null
}

variable "registry_prefix" {
  description = "Key prefix of the schema registry, e.g. `schemas/`."
  type        = string
  default     = ""
}

variable "dead_letter_bucket" {
  description = "Bucket of the dead-letter place (written by the jobs); null for none."
  type        = string
  default     = null
}

variable "dead_letter_prefix" {
  description = "Key prefix of the dead-letter place, e.g. `dead-letter/events/`. Keep it outside the table prefix."
  type        = string
  default     = ""
}

variable "kms_key_arns" {
  description = "KMS keys of SSE-KMS buckets the jobs and the trigger use (decrypt and generate data keys)."
  type        = list(string)
  default     = []
}

variable "sns_topic_arn" {
  description = "The SNS topic on which the upstream pipeline announces closed partitions (or S3 sends notifications)."
  type        = string
}

variable "sns_filter_policy" {
  description = "Optional SNS filter policy (JSON) on the message body, e.g. `{\"data_type\": [\"events\"]}` when one topic serves several data types."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of the Fargate jobs (private subnets with a NAT gateway or VPC endpoints for S3, ECR, CloudWatch Logs)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the Fargate jobs (outbound HTTPS only is enough)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give the jobs a public IP (public subnets without NAT)."
  type        = bool
  default     = false
}

variable "fargate_spot" {
  description = "Run on Fargate Spot (cheaper; interrupted jobs are retried)."
  type        = bool
  default     = false
}

variable "max_vcpus" {
  description = "Most vCPUs the compute environment runs at once."
  type        = number
  default     = 64
}

variable "job_vcpus" {
  description = "vCPUs of one job (a Fargate size: 0.25, 0.5, 1, 2, 4, 8, 16)."
  type        = string
  default     = "2"
}

variable "job_memory_mib" {
  description = "Memory of one job in MiB (valid for job_vcpus on Fargate; `parqour run` stays near its --memory-limit, default 1 GiB)."
  type        = number
  default     = 4096
}

variable "job_attempts" {
  description = "Attempts of a job (retries on exit 75 and lost hosts)."
  type        = number
  default     = 5
}

variable "job_timeout_seconds" {
  description = "Timeout of one attempt."
  type        = number
  default     = 3600
}

variable "log_retention_days" {
  description = "Retention of the jobs' and the trigger's logs."
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires (e.g. an SNS topic for on-call)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
