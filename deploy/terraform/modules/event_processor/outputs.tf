output "job_queue_arn" {
  description = "The job queue (PARQOUR_JOB_QUEUE for `parqour submit` and `parqour backfill`)."
  value       = aws_batch_job_queue.this.arn
}

output "job_definition_arn" {
  description = "The job definition (PARQOUR_JOB_DEFINITION)."
  value       = aws_batch_job_definition.this.arn
}

output "table_url" {
  description = "The table (PARQOUR_TABLE)."
  value       = local.table_url
}

output "raw_prefix_template" {
  description = "The raw prefix template (PARQOUR_RAW_PREFIX)."
  value       = local.raw_url
}

output "trigger_function_name" {
  description = "The trigger Lambda function."
  value       = aws_lambda_function.trigger.function_name
}

output "trigger_failed_queue_url" {
  description = "Events the trigger failed on after its retries (redrive them to the function once fixed)."
  value       = aws_sqs_queue.trigger_failed.url
}

output "job_role_arn" {
  description = "The jobs' IAM role (S3 access)."
  value       = aws_iam_role.job.arn
}

output "job_log_group" {
  description = "The jobs' log group."
  value       = aws_cloudwatch_log_group.jobs.name
}
