# Fargate compute environment, job queue and the job definition of `parqour run`.
# Without a service_role Batch uses its service-linked role (AWSServiceRoleForBatch).

resource "aws_batch_compute_environment" "this" {
  compute_environment_name = local.name
  type                     = "MANAGED"
  state                    = "ENABLED"

  compute_resources {
    type               = var.fargate_spot ? "FARGATE_SPOT" : "FARGATE"
    max_vcpus          = var.max_vcpus
    subnets            = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  tags = var.tags
}

resource "aws_batch_job_queue" "this" {
  name     = local.name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }

  tags = var.tags
}

# The same definition as job-definitions/fargate.json; the trigger submits it with the parameter
# `manifest` (array jobs override the command with `run --manifests PREFIX --manifest-count N`).
resource "aws_batch_job_definition" "this" {
  name                  = local.name
  type                  = "container"
  platform_capabilities = ["FARGATE"]
  propagate_tags        = true

  container_properties = jsonencode({
    image            = var.image
    command          = ["run", "--manifest", "Ref::manifest"]
    jobRoleArn       = aws_iam_role.job.arn
    executionRoleArn = aws_iam_role.execution.arn
    resourceRequirements = [
      { type = "VCPU", value = var.job_vcpus },
      { type = "MEMORY", value = tostring(var.job_memory_mib) },
    ]
    environment = [
      { name = "PARQOUR_LOG_FORMAT", value = "json" },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.jobs.name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = "parqour"
      }
    }
    networkConfiguration         = { assignPublicIp = var.assign_public_ip ? "ENABLED" : "DISABLED" }
    fargatePlatformConfiguration = { platformVersion = "LATEST" }
    runtimePlatform = {
      operatingSystemFamily = "LINUX"
      cpuArchitecture       = var.architecture == "arm64" ? "ARM64" : "X86_64"
    }
    # Spill files of open row groups go to TMPDIR on this disk.
    ephemeralStorage = { sizeInGiB = 30 }
  })

  # parqour's exit codes (src/cli.rs): 75 retryable; 64 usage, 65 bad input, 70 internal error,
  # 78 configuration: retrying will not help. A lost host (Spot reclaim, instance failure) is
  # retried; so is anything that matches no entry (Batch's default). tests/aws.rs checks this.
  retry_strategy {
    attempts = var.job_attempts

    evaluate_on_exit {
      action       = "RETRY"
      on_exit_code = "75"
    }
    evaluate_on_exit {
      action           = "RETRY"
      on_status_reason = "Host EC2*"
    }
    evaluate_on_exit {
      action       = "EXIT"
      on_exit_code = "6*"
    }
    evaluate_on_exit {
      action       = "EXIT"
      on_exit_code = "7*"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }

  tags = var.tags
}
