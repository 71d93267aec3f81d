# Least privilege:
# - the job reads the raw prefix and the registry, writes the table (its part files, markers and
#   manifests) and the dead-letter prefix; nothing else;
# - the trigger reads the raw prefix (to list it) and the table's markers, writes the manifests,
#   submits to this queue and definition;
# - the execution role pulls the image and writes the job logs.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# What the job and the trigger both need: list and read the raw prefix (the trigger HEADs the
# prefix itself, which may be an object), list the table (which also makes a missing marker a
# 404, not a 403), and the buckets' KMS keys.
data "aws_iam_policy_document" "raw_and_table" {
  statement {
    sid       = "ListRaw"
    actions   = ["s3:ListBucket"]
    resources = ["${local.s3}${var.raw_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.raw_prefix}*"]
    }
  }
  statement {
    sid       = "ReadRaw"
    actions   = ["s3:GetObject"]
    resources = ["${local.s3}${var.raw_bucket}/${var.raw_prefix}*"]
  }
  statement {
    sid       = "ListTable"
    actions   = ["s3:ListBucket"]
    resources = ["${local.s3}${var.table_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.table_prefix}/*"]
    }
  }
  dynamic "statement" {
    for_each = length(var.kms_key_arns) == 0 ? [] : [1]
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.kms_key_arns
    }
  }
}

# --- the job (`parqour run`) ---

resource "aws_iam_role" "job" {
  name               = "${local.name}-job"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "job" {
  source_policy_documents = [data.aws_iam_policy_document.raw_and_table.json]

  statement {
    sid       = "WriteTable"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.s3}${var.table_bucket}/${var.table_prefix}/*"]
  }
  dynamic "statement" {
    for_each = var.registry_bucket == null ? [] : [1]
    content {
      sid       = "ListRegistry"
      actions   = ["s3:ListBucket"]
      resources = ["${local.s3}${var.registry_bucket}"]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${var.registry_prefix}*"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.registry_bucket == null ? [] : [1]
    content {
      sid       = "ReadRegistry"
      actions   = ["s3:GetObject"]
      resources = ["${local.s3}${var.registry_bucket}/${var.registry_prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = var.dead_letter_bucket == null ? [] : [1]
    content {
      sid       = "WriteDeadLetter"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = ["${local.s3}${var.dead_letter_bucket}/${var.dead_letter_prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "s3"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# --- the execution role (image pull, logs) ---

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.jobs.arn}:*"]
  }
  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrPull"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [local.ecr_repository_arn]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- the trigger (Lambda function) ---

resource "aws_iam_role" "trigger" {
  name               = "${local.name}-trigger"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "trigger" {
  source_policy_documents = [data.aws_iam_policy_document.raw_and_table.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.trigger.arn}:*"]
  }
  statement {
    sid       = "ReadMarkersAndManifests"
    actions   = ["s3:GetObject"]
    resources = ["${local.s3}${var.table_bucket}/${var.table_prefix}/*"]
  }
  statement {
    sid       = "WriteManifests"
    actions   = ["s3:PutObject"]
    resources = ["${local.s3}${var.table_bucket}/${var.table_prefix}/_manifests/*"]
  }
  statement {
    sid     = "Submit"
    actions = ["batch:SubmitJob"]
    resources = [
      aws_batch_job_queue.this.arn,
      aws_batch_job_definition.this.arn_prefix,
      "${aws_batch_job_definition.this.arn_prefix}:*",
    ]
  }
  # ListJobs has no resource-level permissions.
  statement {
    sid       = "FindJobs"
    actions   = ["batch:ListJobs"]
    resources = ["*"]
  }
  statement {
    sid       = "FailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.trigger_failed.arn]
  }
}

resource "aws_iam_role_policy" "trigger" {
  name   = "trigger"
  role   = aws_iam_role.trigger.id
  policy = data.aws_iam_policy_document.trigger.json
}
