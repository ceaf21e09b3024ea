# -----------------------------------------------------------------------------
# Terraform and provider versions
# -----------------------------------------------------------------------------
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.5"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }
}

# -----------------------------------------------------------------------------
# AWS provider: one region, governance tags on every resource
# -----------------------------------------------------------------------------
provider "aws" {
  region = "eu-central-1"

  default_tags {
    tags = {
      Environment        = var.environment
      DataClassification = var.data_classification
      Compliance         = var.compliance
      Owner              = var.owner
      ManagedBy          = "Terraform"
    }
  }
}

# -----------------------------------------------------------------------------
# Variables
# -----------------------------------------------------------------------------
variable "environment" {
  description = "Environment name used in every resource name ({resource-type}-{purpose}-{environment}) and in the Environment tag."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2 to 10 lower-case letters or digits, starting with a letter (it becomes part of S3, IAM and DynamoDB names)."
  }
}

variable "lambda_runtime" {
  description = "Implementation of both Lambda functions: \"python3.11\" (the Python handlers in this directory) or \"rust\" (bootstrap binaries for provided.al2023 on arm64, built by `make build-rust`)."
  type        = string
  default     = "python3.11"

  validation {
    condition     = contains(["python3.11", "rust"], var.lambda_runtime)
    error_message = "lambda_runtime must be \"python3.11\" or \"rust\"."
  }
}

variable "rust_bootstrap_dir" {
  description = "Directory holding processor/bootstrap and dlq-processor/bootstrap built for aarch64 (used when lambda_runtime = \"rust\"). Null means ../build/lambda/rust relative to this directory."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "E-mail address subscribed to the alarm topic (the subscription needs manual confirmation)."
  type        = string
  default     = "devops-alerts@example.com"

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "owner" {
  description = "Team that owns the pipeline (Owner tag)."
  type        = string
  default     = "platform-engineering"

  validation {
    condition     = length(var.owner) > 0 && length(var.owner) <= 256
    error_message = "owner must be 1 to 256 characters."
  }
}

variable "data_classification" {
  description = "Data classification of the transaction data (DataClassification tag)."
  type        = string
  default     = "confidential"

  validation {
    condition     = contains(["public", "internal", "confidential", "restricted"], var.data_classification)
    error_message = "data_classification must be one of public, internal, confidential, restricted."
  }
}

variable "compliance" {
  description = "Compliance regime the data falls under (Compliance tag)."
  type        = string
  default     = "GDPR"

  validation {
    condition     = length(var.compliance) > 0 && length(var.compliance) <= 256
    error_message = "compliance must be 1 to 256 characters."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC whose private route tables carry the S3 and DynamoDB gateway endpoints."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 24
    error_message = "vpc_cidr must be an IPv4 CIDR block of /24 or larger."
  }
}

variable "max_file_bytes" {
  description = "Largest object the processor reads; a larger one is recorded as a FILE_TOO_LARGE file error."
  type        = number
  default     = 268435456

  validation {
    condition     = var.max_file_bytes >= 1024 && var.max_file_bytes <= 5368709120 && floor(var.max_file_bytes) == var.max_file_bytes
    error_message = "max_file_bytes must be a whole number of bytes between 1 KiB and 5 GiB."
  }
}

variable "range_split_bytes" {
  description = "A CSV object (or JSON array) larger than this is split into row-aligned ranges that the main queue's consumers process side by side (contract P33, P33a); 0 never splits. Each range is at least this large, and a file has at most 100 ranges. 1 MiB by default (about 10,000 rows): the smallest allowed, so that a large file gets the most ranges side by side."
  type        = number
  default     = 1048576

  validation {
    condition     = var.range_split_bytes == 0 || (var.range_split_bytes >= 1048576 && var.range_split_bytes <= 5368709120 && floor(var.range_split_bytes) == var.range_split_bytes)
    error_message = "range_split_bytes must be 0 (never split) or a whole number of bytes between 1 MiB and 5 GiB."
  }
}

variable "range_max_concurrency" {
  description = "Most concurrent processor invocations that the main queue (ranges, resumes, retries) may take (the event source mapping's scaling_config.maximum_concurrency, contract P36); it stays below processor_reserved_concurrency so that S3 events always find executions."
  type        = number
  default     = 50

  validation {
    condition     = var.range_max_concurrency >= 2 && var.range_max_concurrency <= 1000 && floor(var.range_max_concurrency) == var.range_max_concurrency && var.range_max_concurrency < var.processor_reserved_concurrency
    error_message = "range_max_concurrency must be a whole number between 2 and 1000 (the AWS limits) and below processor_reserved_concurrency."
  }
}

variable "processor_queue_batch_size" {
  description = "Messages per invocation from the main queue (its event source mapping's batch_size). 1 by default: a range message is a whole invocation's work, so a batch of ten would run ten ranges one after another in one execution environment instead of side by side (contract P36); retry_records, the queue's other messages, are rare once writes yield (P37)."
  type        = number
  default     = 1

  validation {
    condition     = var.processor_queue_batch_size >= 1 && var.processor_queue_batch_size <= 10 && floor(var.processor_queue_batch_size) == var.processor_queue_batch_size
    error_message = "processor_queue_batch_size must be a whole number between 1 and 10."
  }
}

variable "time_safety_margin_ms" {
  description = "When less than this remains of an invocation, the processor queues a resume_file message and stops."
  type        = number
  default     = 30000

  validation {
    condition     = var.time_safety_margin_ms >= 5000 && var.time_safety_margin_ms < 300000 && floor(var.time_safety_margin_ms) == var.time_safety_margin_ms
    error_message = "time_safety_margin_ms must be a whole number, at least 5000 and below the 300000 ms function timeout."
  }
}

# Write sharding of status-index (contract/decisions.md P40): each stored item's index key is
# status_shard = "<status>#<n>", n = a stable hash of transaction_id mod this number, so the
# index's writes spread over this many partition key values instead of one. One partition key
# value serves at most 1,000 write units/s
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html)
# and a new on-demand table 4,000
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/pre-warming-on-demand-capacity-mode.html):
# the values hash onto the index's partitions unevenly (a new table's index has about four):
# with 16 values the busiest takes about 38 % of the writes, which holds a new table to about
# 2,670 records/s, and a 1M-row file needs more than 6 minutes of writes. The default, 1,000
# (the most allowed), brings the busiest to about 27 % (3,700 records/s): with it the benchmark's
# model (scaled to a quarter, one run) stores a 1M-row file in about 289 s from upload on a new
# table, with 16 in about 386 s (docs/benchmarks.md). The price is on the read side: a read of
# "items by status over time" is one Query per value (1,000 by default, read 10 at a time by
# pipeline_local/status_query.py); a stack that never takes large files may set fewer.
# Raising it is safe (older items keep their shard, which stays below the new number); lowering
# it hides the items of the dropped shards from the fan-out until they are rewritten.
variable "status_index_shards" {
  description = "Number of status_shard values per status on status-index (write sharding, P40): the index's writes spread over this many key values (1,000 write units/s each at most), and the more values the more evenly they spread over the index's partitions; a by-status read fans out over this many Query calls. Only raise it on a deployed stack."
  type        = number
  default     = 1000

  validation {
    condition     = var.status_index_shards >= 1 && var.status_index_shards <= 1000 && floor(var.status_index_shards) == var.status_index_shards
    error_message = "status_index_shards must be a whole number between 1 and 1000."
  }
}

variable "error_retention_days" {
  description = "Days an error row stays in the errors table before DynamoDB TTL removes it (GDPR data minimisation)."
  type        = number
  default     = 365

  validation {
    condition     = var.error_retention_days >= 1 && var.error_retention_days <= 3650 && floor(var.error_retention_days) == var.error_retention_days
    error_message = "error_retention_days must be a whole number between 1 and 3650."
  }
}

# Namespace rules: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Namespace
# (ASCII letters, digits and . - _ / # : and space; at most 255 characters; AWS/ belongs to AWS
# services) and https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Metric.html
# (pattern [^:].*: no leading colon).
variable "metric_namespace" {
  description = "CloudWatch namespace of the pipeline's own metrics: both functions write their Embedded Metric Format lines to it (METRIC_NAMESPACE), and the dashboard reads it."
  type        = string
  default     = "TransactionPipeline"

  validation {
    condition     = can(regex("^[0-9A-Za-z._/#-][0-9A-Za-z._/#: -]{0,254}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/")
    error_message = "metric_namespace must be 1 to 255 characters of letters, digits, . - _ / # : or space, must not start with a colon or a space, and must not start with AWS/ (reserved for AWS services)."
  }
}

variable "attach_functions_to_vpc" {
  description = "Run both functions in the private subnets, so that their S3, DynamoDB and SQS calls travel through the VPC endpoints and never over the public service endpoints. false puts them back on Lambda's own network (the endpoints then carry nothing)."
  type        = bool
  default     = true
  nullable    = false
}

variable "processor_reserved_concurrency" {
  description = "Reserved concurrent executions of the transaction processor (client: 100). The account's concurrency limit must be at least this plus dlq_processor_reserved_concurrency plus the 100 that AWS keeps unreserved: `make preflight` checks it."
  type        = number
  default     = 100

  validation {
    condition     = var.processor_reserved_concurrency >= 1 && var.processor_reserved_concurrency <= 10000 && floor(var.processor_reserved_concurrency) == var.processor_reserved_concurrency
    error_message = "processor_reserved_concurrency must be a whole number between 1 and 10000."
  }
}

variable "dlq_processor_reserved_concurrency" {
  description = "Reserved concurrent executions of the DLQ processor (client: 50). See processor_reserved_concurrency for the account limit it needs."
  type        = number
  default     = 50

  validation {
    condition     = var.dlq_processor_reserved_concurrency >= 1 && var.dlq_processor_reserved_concurrency <= 10000 && floor(var.dlq_processor_reserved_concurrency) == var.dlq_processor_reserved_concurrency
    error_message = "dlq_processor_reserved_concurrency must be a whole number between 1 and 10000."
  }
}
