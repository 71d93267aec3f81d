# Logs and alarms.
#
# - Failed jobs: Batch's "Job State Change" events for FAILED jobs of this queue go to a log
#   group; a metric filter counts them (parqour/FailedJobs by JobQueue).
# - Dead-lettered records: every `parqour run` prints one Embedded Metric Format line (namespace
#   `parqour`, dimension `Table`, with RecordsDeadLettered, see src/cli.rs).
# - The trigger: invalid messages (EMF InvalidMessages, dimension Function) and events that still
#   failed after Lambda's retries (messages in the failed-events queue).

resource "aws_cloudwatch_log_group" "jobs" {
  name              = "/aws/batch/${local.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "trigger" {
  name              = "/aws/lambda/${local.name}-trigger"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "failed_jobs" {
  name              = "/aws/events/${local.name}-failed-jobs"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "events_to_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.failed_jobs.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "failed_jobs" {
  policy_name     = "${local.name}-failed-jobs"
  policy_document = data.aws_iam_policy_document.events_to_logs.json
}

resource "aws_cloudwatch_event_rule" "failed_jobs" {
  name        = "${local.name}-failed-jobs"
  description = "parqour jobs of ${local.name} that failed after their retries"
  event_pattern = jsonencode({
    source        = ["aws.batch"]
    "detail-type" = ["Batch Job State Change"]
    detail = {
      status   = ["FAILED"]
      jobQueue = [aws_batch_job_queue.this.arn]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "failed_jobs" {
  rule = aws_cloudwatch_event_rule.failed_jobs.name
  arn  = aws_cloudwatch_log_group.failed_jobs.arn
}

resource "aws_cloudwatch_log_metric_filter" "failed_jobs" {
  name           = "${local.name}-failed-jobs"
  log_group_name = aws_cloudwatch_log_group.failed_jobs.name
  pattern        = "{ $.detail.status = \"FAILED\" }"

  metric_transformation {
    namespace  = "parqour"
    name       = "FailedJobs"
    value      = "1"
    unit       = "Count"
    dimensions = { JobQueue = "$.detail.jobQueue" }
  }
}

resource "aws_cloudwatch_metric_alarm" "failed_jobs" {
  alarm_name          = "${local.name}-failed-jobs"
  alarm_description   = "A parqour job of ${local.name} failed after its retries: see ${aws_cloudwatch_log_group.failed_jobs.name} and the job's log in ${aws_cloudwatch_log_group.jobs.name}."
  namespace           = "parqour"
  metric_name         = "FailedJobs"
  dimensions          = { JobQueue = aws_batch_job_queue.this.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_lettered_records" {
  alarm_name          = "${local.name}-dead-lettered-records"
  alarm_description   = "Records of ${local.table_url} could not be converted and went to the dead-letter place: see it and the job logs; `parqour replay` turns them back into inputs."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  namespace   = "parqour"
  metric_name = "RecordsDeadLettered"
  dimensions  = { Table = local.table_url }
  period      = 300
  statistic   = "Sum"

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "invalid_messages" {
  alarm_name          = "${local.name}-invalid-messages"
  alarm_description   = "The trigger of ${local.name} got messages it cannot understand (reported in ${aws_cloudwatch_log_group.trigger.name}, not retried)."
  namespace           = "parqour"
  metric_name         = "InvalidMessages"
  dimensions          = { Function = aws_lambda_function.trigger.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "trigger_failed" {
  alarm_name          = "${local.name}-trigger-failed"
  alarm_description   = "Events the trigger of ${local.name} could not handle after Lambda's retries are waiting in ${aws_sqs_queue.trigger_failed.name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.trigger_failed.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
