# An example root module: one data type, `events`, from s3://<raw>/events/YYYY/MM/DD/HH/ to the
# table s3://<lake>/events partitioned by dt and hour.
#
#   terraform init && terraform apply -var image=<account>.dkr.ecr.<region>.amazonaws.com/parqour:<tag> \
#     -var trigger_image=<account>.dkr.ecr.<region>.amazonaws.com/parqour:<tag>-arm64 ...

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "image" {
  description = "The parqour image in ECR, both architectures (see the README: build and push)."
  type        = string
}

variable "trigger_image" {
  description = "The same image for arm64 only (Lambda takes single-architecture images), e.g. <image>-arm64."
  type        = string
}

variable "raw_bucket" {
  type = string
}

variable "lake_bucket" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets with a NAT gateway (or VPC endpoints for S3, ECR and CloudWatch Logs)."
  type        = list(string)
}

variable "alarm_email" {
  type    = string
  default = null
}

# The topic the upstream pipeline publishes "partition closed" messages on.
resource "aws_sns_topic" "partition_closed" {
  name = "partition-closed"
}

resource "aws_sns_topic" "alarms" {
  name = "parqour-alarms"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_security_group" "jobs" {
  name        = "parqour-jobs"
  description = "parqour Batch jobs: outbound HTTPS only"
  vpc_id      = var.vpc_id

  egress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "conversion_event_processor" {
  source = "../../modules/event_processor"

  data_type     = "events"
  image         = var.image
  trigger_image = var.trigger_image

  raw_bucket   = var.raw_bucket
  raw_prefix   = "events/"
  table_bucket = var.lake_bucket
  table_prefix = "events"

  registry_bucket    = var.lake_bucket
  registry_prefix    = "schemas/events/"
  dead_letter_bucket = var.lake_bucket
  dead_letter_prefix = "dead-letter/events/"

  sns_topic_arn      = aws_sns_topic.partition_closed.arn
  sns_filter_policy  = jsonencode({ data_type = ["events"] })
  subnet_ids         = var.subnet_ids
  security_group_ids = [aws_security_group.jobs.id]
  fargate_spot       = true

  alarm_actions = [aws_sns_topic.alarms.arn]
  tags          = { app = "parqour", data_type = "events" }
}

output "job_queue" {
  value = module.conversion_event_processor.job_queue_arn
}

output "job_definition" {
  value = module.conversion_event_processor.job_definition_arn
}

output "partition_closed_topic" {
  value = aws_sns_topic.partition_closed.arn
}
