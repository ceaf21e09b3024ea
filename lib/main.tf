# =============================================================================
# Serverless transaction-file pipeline (see ../README.md and ../docs/)
#
#   S3 (*.csv, *.json) --event--> processor Lambda --> DynamoDB transactions
#        invalid records --> DLQ --> DLQ processor Lambda --> DynamoDB errors
#        transient failures / resumes --> main queue --> processor Lambda
# =============================================================================

# -----------------------------------------------------------------------------
# Data sources (the only four the client allows)
# -----------------------------------------------------------------------------
data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

# Pinned to the zones the private subnets are planned for, so a zone AWS adds later cannot
# move a subnet.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
  }
}

# One archive per function, each zipping exactly one file: the Python handler, or the Rust
# bootstrap binary when lambda_runtime = "rust".
data "archive_file" "lambda_zip" {
  for_each = local.lambda_sources

  type             = "zip"
  source_file      = each.value
  output_path      = "${path.module}/.build/${each.key}-${local.runtime_key}.zip"
  output_file_mode = local.is_rust ? "0755" : "0644"

  lifecycle {
    precondition {
      condition     = fileexists(each.value)
      error_message = "Lambda source ${each.value} does not exist. For lambda_runtime = \"rust\" build the aarch64 bootstrap binaries first with `make build-rust` (or set rust_bootstrap_dir)."
    }
  }
}

# -----------------------------------------------------------------------------
# Names and common values
# -----------------------------------------------------------------------------
locals {
  env        = var.environment
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = "aws"

  is_rust     = var.lambda_runtime == "rust"
  runtime_key = local.is_rust ? "rust" : "python"
  rust_dir    = coalesce(var.rust_bootstrap_dir, "${path.module}/../build/lambda/rust")

  lambda_sources = {
    processor     = local.is_rust ? "${local.rust_dir}/processor/bootstrap" : "${path.module}/processor_function.py"
    dlq_processor = local.is_rust ? "${local.rust_dir}/dlq-processor/bootstrap" : "${path.module}/dlq_processor_function.py"
  }
  lambda_runtime_id = local.is_rust ? "provided.al2023" : "python3.11"
  lambda_handlers = {
    processor     = local.is_rust ? "bootstrap" : "processor_function.lambda_handler"
    dlq_processor = local.is_rust ? "bootstrap" : "dlq_processor_function.lambda_handler"
  }

  names = {
    bucket              = "s3-transactions-${local.env}-${local.account_id}"
    processor           = "lambda-transaction-processor-${local.env}"
    dlq_processor       = "lambda-dlq-processor-${local.env}"
    processor_role      = "iam-role-transaction-processor-${local.env}"
    dlq_processor_role  = "iam-role-dlq-processor-${local.env}"
    transactions_table  = "dynamodb-transactions-${local.env}"
    errors_table        = "dynamodb-errors-${local.env}"
    file_status_table   = "dynamodb-file-status-${local.env}"
    main_queue          = "sqs-transaction-retry-${local.env}"
    dlq                 = "sqs-transaction-dlq-${local.env}"
    topic               = "sns-pipeline-alerts-${local.env}"
    error_rate_alarm    = "cw-alarm-processor-error-rate-${local.env}"
    dlq_depth_alarm     = "cw-alarm-dlq-depth-${local.env}"
    dashboard           = "cw-dashboard-transactions-${local.env}"
    vpc                 = "vpc-transactions-${local.env}"
    metrics_namespace   = var.metric_namespace
    processor_log_group = "/aws/lambda/lambda-transaction-processor-${local.env}"
    dlq_log_group       = "/aws/lambda/lambda-dlq-processor-${local.env}"
  }

  # ARNs built from names, so that key policies can name the resources they protect without
  # a dependency cycle (the resources themselves reference the keys).
  arns = {
    bucket              = "arn:${local.partition}:s3:::${local.names.bucket}"
    processor           = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.names.processor}"
    dlq_processor       = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.names.dlq_processor}"
    transactions_table  = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${local.names.transactions_table}"
    errors_table        = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${local.names.errors_table}"
    file_status_table   = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${local.names.file_status_table}"
    main_queue          = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.names.main_queue}"
    dlq                 = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.names.dlq}"
    topic               = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.names.topic}"
    processor_log_group = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.names.processor_log_group}"
    dlq_log_group       = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.names.dlq_log_group}"
    alarms              = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:cw-alarm-*-${local.env}"
  }

  root_principal = "arn:${local.partition}:iam::${local.account_id}:root"

  # The service endpoints that use a key with the caller's own credentials (forward access
  # sessions), as the condition key kms:ViaService names them. An IAM statement limited to one
  # of these lets a role use a key only through that service, never by calling KMS itself.
  # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
  kms_via = {
    s3       = "s3.${local.region}.amazonaws.com"
    sqs      = "sqs.${local.region}.amazonaws.com"
    dynamodb = "dynamodb.${local.region}.amazonaws.com"
    lambda   = "lambda.${local.region}.amazonaws.com"
  }

  # Objects are encrypted with the bucket key, whose encryption context is the bucket ARN;
  # an object uploaded with the bucket key disabled carries its own object ARN instead.
  # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html
  s3_encryption_context_arns = [local.arns.bucket, "${local.arns.bucket}/*"]

  # What the statement giving the account itself full access (first in the key, bucket and
  # topic policies, so that the account can never lose control) says besides Sid, Action and
  # Resource.
  root_access = { Effect = "Allow", Principal = { AWS = local.root_principal } }

  # Key policy statement every key starts with.
  kms_root_statement = merge(local.root_access, { Sid = "EnableRootAccountAccess", Action = "kms:*", Resource = "*" })

  lambda_common = {
    memory_size = 512
    timeout     = 300
  }
}

# -----------------------------------------------------------------------------
# Deployment identifier (tags only: names stay deterministic)
# -----------------------------------------------------------------------------
resource "random_id" "deployment" {
  byte_length = 8

  keepers = {
    environment = local.env
  }
}

# -----------------------------------------------------------------------------
# KMS: one key for S3, one for DynamoDB, one for Lambda environment, SQS, Logs and SNS
# -----------------------------------------------------------------------------
locals {
  # Condition that a service acts for this account (with aws:SourceArn naming the resource).
  source_account = { "aws:SourceAccount" = local.account_id }

  # Each key's policy is the root statement, then these grants to service principals (each
  # allowed on the key itself, Resource "*", and limited to the pipeline's own resources).
  kms_keys = {
    s3 = {
      alias       = "alias/s3-transactions-${local.env}"
      description = "Encrypts objects in ${local.names.bucket}"
      grants = [
        {
          Sid       = "AllowS3ServiceForTransactionsBucket"
          Principal = { Service = "s3.amazonaws.com" }
          Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
          Condition = { StringEquals = local.source_account, ArnLike = { "aws:SourceArn" = local.arns.bucket } }
        },
      ]
    }

    dynamodb = {
      alias       = "alias/dynamodb-transactions-${local.env}"
      description = "Encrypts the transactions, errors and file status tables"
      grants = [
        {
          Sid       = "AllowDynamoDBServiceForPipelineTables"
          Principal = { Service = "dynamodb.amazonaws.com" }
          Action    = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"]
          Condition = {
            StringEquals = local.source_account
            ArnLike      = { "aws:SourceArn" = [local.arns.transactions_table, local.arns.errors_table, local.arns.file_status_table] }
          }
        },
      ]
    }

    lambda = {
      alias       = "alias/lambda-encryption-${local.env}"
      description = "Encrypts Lambda environment variables, both SQS queues, both log groups and the alarm topic"
      grants = [
        {
          Sid       = "AllowLambdaEnvironmentEncryption"
          Principal = { Service = "lambda.amazonaws.com" }
          Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
          # Lambda names the function in the encryption context of its environment variables.
          # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html
          Condition = {
            StringEquals = {
              "kms:EncryptionContext:aws:lambda:FunctionArn" = [local.arns.processor, local.arns.dlq_processor]
            }
          }
        },
        {
          Sid       = "AllowSqsForPipelineQueues"
          Principal = { Service = "sqs.amazonaws.com" }
          Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
          Condition = { StringEquals = local.source_account, ArnLike = { "aws:SourceArn" = [local.arns.main_queue, local.arns.dlq] } }
        },
        {
          # CloudWatch Logs uses the regional principal and names the log group in the
          # encryption context.
          Sid       = "AllowCloudWatchLogsForPipelineLogGroups"
          Principal = { Service = "logs.${local.region}.amazonaws.com" }
          Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
          Condition = {
            ArnEquals = {
              "kms:EncryptionContext:aws:logs:arn" = [local.arns.processor_log_group, local.arns.dlq_log_group]
            }
          }
        },
        {
          # Alarms publish to the encrypted topic as cloudwatch.amazonaws.com: without this
          # statement every notification is dropped.
          Sid       = "AllowCloudWatchAlarmsToPublishToEncryptedTopic"
          Principal = { Service = "cloudwatch.amazonaws.com" }
          Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
          Condition = { StringEquals = local.source_account, ArnLike = { "aws:SourceArn" = local.arns.alarms } }
        },
      ]
    }
  }
}

resource "aws_kms_key" "pipeline" {
  for_each = local.kms_keys

  description             = each.value.description
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 7

  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat([local.kms_root_statement], [for grant in each.value.grants : merge({ Effect = "Allow", Resource = "*" }, grant)])
  })
}

resource "aws_kms_alias" "pipeline" {
  for_each = local.kms_keys

  name          = each.value.alias
  target_key_id = aws_kms_key.pipeline[each.key].key_id
}

# -----------------------------------------------------------------------------
# S3: upload bucket
# -----------------------------------------------------------------------------
resource "aws_s3_bucket" "transactions" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket; CloudTrail data events cover auditing in this dev stack.
  #checkov:skip=CKV_AWS_144:Cross-region replication is out of scope for the single-region (eu-central-1) dev stack.
  bucket        = local.names.bucket
  force_destroy = true
}

resource "aws_s3_bucket_versioning" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.pipeline["s3"].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      merge(local.root_access, {
        Sid      = "AllowRootAccountAccess"
        Action   = "s3:*"
        Resource = [aws_s3_bucket.transactions.arn, "${aws_s3_bucket.transactions.arn}/*"]
      }),
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.transactions.arn, "${aws_s3_bucket.transactions.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        # Uploads without an encryption header get the bucket's default SSE-KMS; an upload
        # that asks for anything else is refused.
        Sid       = "DenyUploadsNotEncryptedWithKms"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.transactions.arn}/*"
        Condition = {
          StringNotEquals = { "s3:x-amz-server-side-encryption" = "aws:kms" }
          Null            = { "s3:x-amz-server-side-encryption" = "false" }
        }
      },
      {
        # An upload may name the bucket's key (by ARN) or no key at all; naming any other key
        # would store an object the pipeline's role cannot decrypt.
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html
        Sid       = "DenyUploadsNamingAnotherKmsKey"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.transactions.arn}/*"
        Condition = {
          StringNotEquals = { "s3:x-amz-server-side-encryption-aws-kms-key-id" = aws_kms_key.pipeline["s3"].arn }
          Null            = { "s3:x-amz-server-side-encryption-aws-kms-key-id" = "false" }
        }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.transactions]
}

resource "aws_s3_bucket_lifecycle_configuration" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  # Since September 2024 a lifecycle configuration without this setting skips every object
  # under 128 KB, and most transaction files are smaller: the 90-day rule would move almost
  # nothing. Glacier Flexible Retrieval then stores each small object with 40 KB of per-object
  # overhead and bills one transition request per object (docs/architecture.md, "Lifecycle").
  # https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html
  transition_default_minimum_object_size = "varies_by_storage_class"

  rule {
    id     = "transition-to-glacier-after-90-days"
    status = "Enabled"

    filter {
      prefix = ""
    }

    transition {
      days          = 90
      storage_class = "GLACIER"
    }

    noncurrent_version_transition {
      noncurrent_days = 90
      storage_class   = "GLACIER"
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.transactions]
}

resource "aws_s3_bucket_notification" "transactions" {
  bucket = aws_s3_bucket.transactions.id

  lambda_function {
    id                  = "process-csv-uploads"
    lambda_function_arn = aws_lambda_function.function["processor"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_suffix       = ".csv"
  }

  lambda_function {
    id                  = "process-json-uploads"
    lambda_function_arn = aws_lambda_function.function["processor"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_suffix       = ".json"
  }

  depends_on = [aws_lambda_permission.allow_s3_invoke_processor]
}

# -----------------------------------------------------------------------------
# DynamoDB: the transactions, errors and file status tables
# -----------------------------------------------------------------------------
locals {
  # What differs between the tables: name, key [hash, range], global secondary indexes
  # (name = [hash, range], each projecting ALL) and TTL attribute. Each table declares exactly
  # the attributes its keys name: "timestamp" a number, every other one a string. All three are
  # on demand, with point-in-time recovery, encrypted with the DynamoDB key.
  tables = {
    transactions = {
      name = local.names.transactions_table
      key  = ["transaction_id", "timestamp"]
      # "GSI for status queries", write-sharded (contract/decisions.md P40): the hash key is
      # status_shard = "<status>#<n>" (n < var.status_index_shards), not status, whose one value
      # PROCESSED put every index write on one partition key value (1,000 write units/s at most).
      # Items of one status over time: one Query per shard, merged by timestamp
      # (pipeline_local/status_query.py; docs/operations.md). Changing a GSI's key schema deletes
      # and recreates the index: docs/operations.md describes the migration of a deployed table.
      indexes       = { "status_shard-index" = ["status_shard", "timestamp"] }
      ttl_attribute = null
    }

    errors = {
      name = local.names.errors_table
      key  = ["error_id", "timestamp"]
      indexes = {
        "transaction_id-index" = ["transaction_id", "timestamp"]
        # Errors by file (issue 14): every row of one object key, in time order.
        "source_key-index" = ["source_key", "timestamp"]
      }
      # Error rows hold masked record data; they expire after error_retention_days.
      ttl_attribute = "expires_at"
    }

    # One item per object version processed: its outcome, updated atomically by every
    # invocation that works on the file (contract/decisions.md P26 to P31;
    # contract/schemas/file_status_item.json).
    file_status = {
      name = local.names.file_status_table
      key  = ["source_key", "source_version_id"]
      # Files by day ("which files failed today"): a few files a day, not a record-rate key.
      indexes       = { "activity_day-index" = ["activity_day", "first_activity"] }
      ttl_attribute = null
    }
  }
}

resource "aws_dynamodb_table" "pipeline" {
  for_each = local.tables

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.key[0]
  range_key                   = each.value.key[1]
  deletion_protection_enabled = false

  dynamic "attribute" {
    for_each = toset(flatten([each.value.key, values(each.value.indexes)]))
    content {
      name = attribute.value
      type = attribute.value == "timestamp" ? "N" : "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.indexes
    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value[0]
      range_key       = global_secondary_index.value[1]
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute[*]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.pipeline["dynamodb"].arn
  }
}

# -----------------------------------------------------------------------------
# SQS: dead letter queue first, then the main (retry) queue that redrives into it
# -----------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  name                              = local.names.dlq
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = 300
  kms_master_key_id                 = aws_kms_key.pipeline["lambda"].arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "main" {
  name                              = local.names.main_queue
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = 300
  kms_master_key_id                 = aws_kms_key.pipeline["lambda"].arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = 3
  })
}

# -----------------------------------------------------------------------------
# The two functions: what differs between them. Each per-function resource below (log group,
# role, policy, function, queue consumer) is one block for_each over this map, keyed
# "processor" and "dlq_processor".
# -----------------------------------------------------------------------------
locals {
  functions = {
    processor = {
      name                 = local.names.processor
      description          = "Validates uploaded transaction files and stores valid records"
      role_name            = local.names.processor_role
      policy_name          = "iam-policy-transaction-processor-${local.env}"
      log_group_name       = local.names.processor_log_group
      reserved_concurrency = var.processor_reserved_concurrency
      # The processor is also the consumer of its own retry queue (design.md section 1).
      consumes_queue = aws_sqs_queue.main.arn
      # Ranges of large files, resumes and retries never take all of the processor's reserved
      # executions from S3 events (contract P36; 2 to 1000:
      # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
      queue_maximum_concurrency = var.range_max_concurrency
      # One message per invocation by default, so that the ranges of a file run side by side.
      queue_batch_size = var.processor_queue_batch_size
      # Asynchronous (S3) invocations that fail every retry land on the retry queue, whose
      # consumer processes the file again.
      dead_letter_config = { target_arn = aws_sqs_queue.main.arn }

      environment = {
        DYNAMODB_TABLE_NAME   = aws_dynamodb_table.pipeline["transactions"].name
        SQS_QUEUE_URL         = aws_sqs_queue.main.url
        DLQ_URL               = aws_sqs_queue.dlq.url
        ENVIRONMENT           = local.env
        METRIC_NAMESPACE      = var.metric_namespace
        MAX_FILE_BYTES        = tostring(var.max_file_bytes)
        TIME_SAFETY_MARGIN_MS = tostring(var.time_safety_margin_ms)
        STATUS_INDEX_SHARDS   = tostring(var.status_index_shards)

        FILE_STATUS_TABLE_NAME = aws_dynamodb_table.pipeline["file_status"].name
        RANGE_SPLIT_BYTES      = tostring(var.range_split_bytes)
      }

      # What the function does besides the statements every function's policy ends with.
      statements = [
        {
          # GetObjectVersion: the processor reads the exact object version named by the event.
          Sid      = "ReadTransactionFiles"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:GetObjectVersion"]
          Resource = "${aws_s3_bucket.transactions.arn}/*"
        },
        {
          Sid      = "StoreTransactions"
          Effect   = "Allow"
          Action   = "dynamodb:PutItem"
          Resource = aws_dynamodb_table.pipeline["transactions"].arn
        },
        {
          # Per-file status (P26 to P31): conditional UpdateItem only; ReturnValues gives back
          # what the processor needs, so it never reads the table.
          Sid      = "UpdateFileStatus"
          Effect   = "Allow"
          Action   = "dynamodb:UpdateItem"
          Resource = aws_dynamodb_table.pipeline["file_status"].arn
        },
        {
          Sid      = "SendInvalidRecordsToDlq"
          Effect   = "Allow"
          Action   = "sqs:SendMessage"
          Resource = aws_sqs_queue.dlq.arn
        },
        {
          # The processor is also the consumer of its own retry queue (design.md section 1).
          Sid      = "UseRetryQueue"
          Effect   = "Allow"
          Action   = concat(["sqs:SendMessage"], local.queue_consumer_actions)
          Resource = aws_sqs_queue.main.arn
        },
        {
          # S3 decrypts the object's data key with the reader's credentials.
          # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
          Sid      = "DecryptTransactionFilesThroughS3"
          Effect   = "Allow"
          Action   = "kms:Decrypt"
          Resource = aws_kms_key.pipeline["s3"].arn
          Condition = {
            StringEquals = { "kms:ViaService" = local.kms_via.s3 }
            ArnLike      = { "kms:EncryptionContext:aws:s3:arn" = local.s3_encryption_context_arns }
          }
        },
      ]
    }

    dlq_processor = {
      name                 = local.names.dlq_processor
      description          = "Stores every dead-lettered message in the errors table"
      role_name            = local.names.dlq_processor_role
      policy_name          = "iam-policy-dlq-processor-${local.env}"
      log_group_name       = local.names.dlq_log_group
      reserved_concurrency = var.dlq_processor_reserved_concurrency
      consumes_queue       = aws_sqs_queue.dlq.arn
      # The DLQ processor's reserved concurrency bounds its mapping already.
      queue_maximum_concurrency = null
      # The client's batch size for the DLQ's mapping.
      queue_batch_size = 10
      # Invoked only by its SQS event source mapping: a failed message stays on the DLQ and is
      # retried, so an asynchronous dead letter queue would never receive anything.
      dead_letter_config = null

      environment = {
        ERRORS_TABLE_NAME    = aws_dynamodb_table.pipeline["errors"].name
        ENVIRONMENT          = local.env
        METRIC_NAMESPACE     = var.metric_namespace
        ERROR_RETENTION_DAYS = tostring(var.error_retention_days)
      }

      statements = [
        {
          Sid      = "ConsumeDlq"
          Effect   = "Allow"
          Action   = local.queue_consumer_actions
          Resource = aws_sqs_queue.dlq.arn
        },
        {
          Sid      = "StoreErrors"
          Effect   = "Allow"
          Action   = "dynamodb:PutItem"
          Resource = aws_dynamodb_table.pipeline["errors"].arn
        },
      ]
    }
  }

  # GetQueueAttributes and ChangeMessageVisibility are what an event source mapping needs
  # besides receive and delete.
  queue_consumer_actions = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
  ]
}

# -----------------------------------------------------------------------------
# CloudWatch Logs: one encrypted log group per function
# -----------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_338:The client requires 30-day retention for this dev stack.
  for_each = local.functions

  name              = each.value.log_group_name
  retention_in_days = 30
  kms_key_id        = aws_kms_key.pipeline["lambda"].arn
}

# -----------------------------------------------------------------------------
# IAM: pieces both Lambda roles share
# -----------------------------------------------------------------------------
locals {
  lambda_assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  # X-Ray trace APIs do not support resource-level permissions.
  xray_write_statement = {
    Sid      = "WriteTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = "*"
  }

  # Both tables are encrypted with the DynamoDB key, and DynamoDB uses it with the caller's
  # credentials: without kms:Decrypt through DynamoDB every PutItem is refused.
  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html
  table_key_statement = {
    Sid       = "UseTableKeyThroughDynamoDB"
    Effect    = "Allow"
    Action    = "kms:Decrypt"
    Resource  = aws_kms_key.pipeline["dynamodb"].arn
    Condition = { StringEquals = { "kms:ViaService" = local.kms_via.dynamodb } }
  }

  # Both queues are encrypted with the lambda key; SQS generates and checks data keys with the
  # sender's and the receiver's credentials (the event source mapping and the asynchronous
  # dead-letter send use the execution role). Lambda decrypts the environment at init.
  # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
  queue_key_statement = {
    Sid       = "UseQueueAndEnvironmentKeyThroughSqsAndLambda"
    Effect    = "Allow"
    Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
    Resource  = aws_kms_key.pipeline["lambda"].arn
    Condition = { StringEquals = { "kms:ViaService" = [local.kms_via.sqs, local.kms_via.lambda] } }
  }

  # What Lambda needs to place a function's network interfaces in the private subnets, as the
  # AWS managed policy AWSLambdaVPCAccessExecutionRole grants it, scoped as far as EC2 allows:
  # CreateNetworkInterface names the interface, the subnet and the security group it uses, so it
  # is limited to the two private subnets and the functions' security group; the interface ids
  # are unknown in advance, so Delete/Assign/Unassign name any interface of this account and
  # region; Describe* actions support no resource-level permissions at all.
  # https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions
  # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaVPCAccessExecutionRole.html
  # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
  network_interfaces_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
  vpc_eni_statements = [for statement in [
    {
      Sid    = "CreateNetworkInterfacesInPrivateSubnets"
      Effect = "Allow"
      Action = "ec2:CreateNetworkInterface"
      Resource = concat(
        [local.network_interfaces_arn],
        [for s in aws_subnet.private : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${s.id}"],
        [for g in aws_security_group.functions : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${g.id}"],
      )
    },
    {
      Sid      = "ManageOwnNetworkInterfaces"
      Effect   = "Allow"
      Action   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      Resource = local.network_interfaces_arn
    },
    {
      Sid      = "DescribeNetworkInterfacesAndSubnets"
      Effect   = "Allow"
      Action   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      Resource = "*"
    },
  ] : statement if var.attach_functions_to_vpc]

  deny_destructive_statement = {
    Sid      = "DenyDestructiveActions"
    Effect   = "Deny"
    Action   = ["s3:DeleteBucket", "dynamodb:DeleteTable"]
    Resource = "*"
  }
}

# -----------------------------------------------------------------------------
# IAM: one least-privilege role per function
# -----------------------------------------------------------------------------
resource "aws_iam_role" "function" {
  for_each = local.functions

  name        = each.value.role_name
  description = "Execution role of ${each.value.name}"

  assume_role_policy = local.lambda_assume_role_policy
}

resource "aws_iam_policy" "function" {
  for_each = local.functions

  name        = each.value.policy_name
  description = "Least-privilege permissions of ${each.value.name}"

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(each.value.statements, [
      local.table_key_statement,
      local.queue_key_statement,
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [aws_cloudwatch_log_group.function[each.key].arn, "${aws_cloudwatch_log_group.function[each.key].arn}:*"]
      },
      local.xray_write_statement,
      local.deny_destructive_statement,
    ], local.vpc_eni_statements)
  })
}

resource "aws_iam_role_policy_attachment" "function" {
  for_each = local.functions

  role       = aws_iam_role.function[each.key].name
  policy_arn = aws_iam_policy.function[each.key].arn
}

# -----------------------------------------------------------------------------
# Lambda: both functions
# -----------------------------------------------------------------------------
resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile outside this dev stack.
  for_each = local.functions

  function_name                  = each.value.name
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = local.lambda_runtime_id
  handler                        = local.lambda_handlers[each.key]
  filename                       = data.archive_file.lambda_zip[each.key].output_path
  source_code_hash               = data.archive_file.lambda_zip[each.key].output_base64sha256
  architectures                  = ["arm64"]
  memory_size                    = local.lambda_common.memory_size
  timeout                        = local.lambda_common.timeout
  reserved_concurrent_executions = each.value.reserved_concurrency
  kms_key_arn                    = aws_kms_key.pipeline["lambda"].arn

  tracing_config {
    mode = "Active"
  }

  # In the private subnets every call the function makes leaves through the VPC endpoints.
  dynamic "vpc_config" {
    for_each = aws_security_group.functions
    content {
      subnet_ids         = aws_subnet.private[*].id
      security_group_ids = [vpc_config.value.id]
    }
  }

  dynamic "dead_letter_config" {
    for_each = each.value.dead_letter_config[*]
    content {
      target_arn = dead_letter_config.value.target_arn
    }
  }

  environment {
    variables = each.value.environment
  }

  tags = {
    DeploymentId = random_id.deployment.hex
  }

  # Both functions wait for all of these (depends_on cannot differ between instances): the
  # DLQ processor needs only its role, policy, log group and the DynamoDB path, and waiting for
  # the others as well costs nothing but a few seconds of ordering on the first apply.
  depends_on = [
    aws_iam_role.function,
    aws_iam_role_policy_attachment.function,
    aws_cloudwatch_log_group.function,
    aws_vpc_endpoint.gateway,
    aws_vpc_endpoint.sqs,
    aws_vpc_security_group_egress_rule.functions,
    aws_vpc_security_group_ingress_rule.interface_endpoints_from_functions,
  ]
}

# Each function consumes one queue: the processor its retry queue, the DLQ processor the DLQ.
resource "aws_lambda_event_source_mapping" "function" {
  for_each = local.functions

  event_source_arn        = each.value.consumes_queue
  function_name           = aws_lambda_function.function[each.key].arn
  batch_size              = each.value.queue_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = each.value.queue_maximum_concurrency == null ? [] : [each.value.queue_maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "processor" {
  function_name                = aws_lambda_function.function["processor"].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600
}

resource "aws_lambda_permission" "allow_s3_invoke_processor" {
  statement_id   = "AllowExecutionFromTransactionsBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["processor"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.transactions.arn
  source_account = local.account_id
}

# -----------------------------------------------------------------------------
# VPC: private subnets whose route tables carry the S3 and DynamoDB gateway endpoints
# -----------------------------------------------------------------------------
resource "aws_vpc" "main" {
  #checkov:skip=CKV2_AWS_11:The only workload is the two functions, whose security group allows nothing but HTTPS to the pipeline's endpoints; flow logs (a log group, a role and $0.50/GB ingested) are left to the account's central network logging, see docs/architecture.md.
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = local.names.vpc
  }
}

# Locks down the default security group so nothing can use it by accident.
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "sg-default-transactions-${local.env}"
  }
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id                  = aws_vpc.main.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  availability_zone       = data.aws_availability_zones.available.names[count.index]
  map_public_ip_on_launch = false

  tags = {
    Name = "subnet-private-${count.index + 1}-${local.env}"
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id

  tags = {
    Name = "rtb-private-${local.env}"
  }
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# Gateway endpoints: the route table of the private subnets sends S3 and DynamoDB traffic to
# them. Their policies allow only what the functions do there (the roles' own policies still
# apply on top), so a function that is made to call another bucket or table through the VPC is
# refused by the endpoint as well.
# https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html
locals {
  # Endpoint policy condition: the caller is the function's own execution role.
  caller_is = { for key, role in aws_iam_role.function : key => { ArnEquals = { "aws:PrincipalArn" = role.arn } } }

  # What each gateway endpoint lets the functions do (Allow, for any principal the condition
  # admits).
  gateway_endpoint_grants = {
    s3 = [
      {
        Sid       = "ProcessorReadsTransactionFiles"
        Action    = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource  = "${aws_s3_bucket.transactions.arn}/*"
        Condition = local.caller_is.processor
      },
    ]
    dynamodb = [
      {
        Sid       = "ProcessorStoresTransactions"
        Action    = "dynamodb:PutItem"
        Resource  = aws_dynamodb_table.pipeline["transactions"].arn
        Condition = local.caller_is.processor
      },
      {
        Sid       = "ProcessorUpdatesFileStatus"
        Action    = "dynamodb:UpdateItem"
        Resource  = aws_dynamodb_table.pipeline["file_status"].arn
        Condition = local.caller_is.processor
      },
      {
        Sid       = "DlqProcessorStoresErrors"
        Action    = "dynamodb:PutItem"
        Resource  = aws_dynamodb_table.pipeline["errors"].arn
        Condition = local.caller_is.dlq_processor
      },
    ]
  }
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = local.gateway_endpoint_grants

  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]

  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [for grant in each.value : merge({ Effect = "Allow", Principal = "*" }, grant)]
  })

  tags = {
    Name = "vpce-${each.key}-${local.env}"
  }
}

# -----------------------------------------------------------------------------
# Security groups: the functions may open HTTPS to the pipeline's endpoints and nothing else
# -----------------------------------------------------------------------------
# Terraform removes the allow-all egress rule AWS adds to a new group, so each group allows
# exactly the rules below.
# https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/security_group
resource "aws_security_group" "functions" {
  count = var.attach_functions_to_vpc ? 1 : 0

  name        = "security-group-lambda-functions-${local.env}"
  description = "Both pipeline functions: HTTPS out to the S3, DynamoDB and SQS endpoints only"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "sg-lambda-functions-${local.env}"
  }
}

resource "aws_security_group" "interface_endpoints" {
  count = var.attach_functions_to_vpc ? 1 : 0

  name        = "security-group-vpc-endpoints-${local.env}"
  description = "Interface endpoints of the pipeline: HTTPS in from the functions only"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "sg-vpc-endpoints-${local.env}"
  }
}

# HTTPS out of the functions' group, to the gateway endpoints (by their prefix lists) and to the
# interface endpoints' group.
locals {
  function_egress = {
    to_s3 = {
      description       = "HTTPS to S3 through the gateway endpoint"
      prefix_list_id    = aws_vpc_endpoint.gateway["s3"].prefix_list_id
      security_group_id = null
    }
    to_dynamodb = {
      description       = "HTTPS to DynamoDB through the gateway endpoint"
      prefix_list_id    = aws_vpc_endpoint.gateway["dynamodb"].prefix_list_id
      security_group_id = null
    }
    to_interface_endpoints = {
      description       = "HTTPS to the interface endpoints (SQS)"
      prefix_list_id    = null
      security_group_id = one(aws_security_group.interface_endpoints[*].id)
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "functions" {
  for_each = { for name, rule in local.function_egress : name => rule if var.attach_functions_to_vpc }

  security_group_id            = aws_security_group.functions[0].id
  description                  = each.value.description
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  prefix_list_id               = each.value.prefix_list_id
  referenced_security_group_id = each.value.security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "interface_endpoints_from_functions" {
  count = var.attach_functions_to_vpc ? 1 : 0

  security_group_id            = aws_security_group.interface_endpoints[0].id
  description                  = "HTTPS from the pipeline functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.functions[0].id
}

# -----------------------------------------------------------------------------
# Interface endpoint: SQS, the one other service the functions' code calls (the processor
# sends invalid records to the DLQ and resume messages to the retry queue). Private DNS makes
# the SDK's default sqs.<region>.amazonaws.com resolve to the endpoint's addresses inside the
# VPC, so the functions need no endpoint setting. Nothing else is needed from inside the VPC:
# the code calls no other service (metrics go out as embedded-metric-format log lines), Lambda
# itself ships the logs, records the active-tracing segments, polls the queues for the event
# source mappings and decrypts the environment, and S3, DynamoDB and SQS call KMS on their own
# side. docs/architecture.md ("Network paths") lists every call and its path.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-internetwork-traffic-privacy.html
# -----------------------------------------------------------------------------
resource "aws_vpc_endpoint" "sqs" {
  count = var.attach_functions_to_vpc ? 1 : 0

  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${local.region}.sqs"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.interface_endpoints[0].id]
  private_dns_enabled = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # SendMessageBatch is authorised as sqs:SendMessage.
      Sid       = "ProcessorSendsToPipelineQueues"
      Effect    = "Allow"
      Principal = "*"
      Action    = "sqs:SendMessage"
      Resource  = [aws_sqs_queue.main.arn, aws_sqs_queue.dlq.arn]
      Condition = local.caller_is.processor
    }]
  })

  tags = {
    Name = "vpce-sqs-${local.env}"
  }
}

# -----------------------------------------------------------------------------
# SNS: alarm notifications
# -----------------------------------------------------------------------------
resource "aws_sns_topic" "alerts" {
  name              = local.names.topic
  kms_master_key_id = aws_kms_key.pipeline["lambda"].arn
}

resource "aws_sns_topic_policy" "alerts" {
  arn = aws_sns_topic.alerts.arn

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      merge(local.root_access, { Sid = "AllowRootAccountFullAccess", Action = "sns:*", Resource = aws_sns_topic.alerts.arn }),
      {
        Sid       = "AllowCloudWatchAlarmsToPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alerts.arn
        Condition = { StringEquals = local.source_account, ArnLike = { "aws:SourceArn" = local.arns.alarms } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "alerts_email" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

# -----------------------------------------------------------------------------
# CloudWatch: alarms
# -----------------------------------------------------------------------------
locals {
  # Both alarms go off after two consecutive breached 5-minute periods and notify the topic on
  # ALARM and OK; they differ in what they watch: a metric, or metric-math queries.
  alarms = {
    processor_error_rate = {
      name        = local.names.error_rate_alarm
      description = "Transaction processor error rate above 1 % in two consecutive 5-minute periods"
      threshold   = 1
      metric      = null
      # The processor's error rate (%) from its Errors and Invocations sums.
      queries = [
        { id = "error_rate", expression = "IF(invocations > 0, 100 * errors / invocations, 0)", label = "Error rate (%)", return_data = true, lambda_metric = null },
        { id = "errors", expression = null, label = null, return_data = null, lambda_metric = "Errors" },
        { id = "invocations", expression = null, label = null, return_data = null, lambda_metric = "Invocations" },
      ]
    }

    dlq_depth = {
      name        = local.names.dlq_depth_alarm
      description = "More than 100 messages waiting on the dead letter queue in two consecutive 5-minute periods"
      threshold   = 100
      metric = {
        namespace   = "AWS/SQS"
        metric_name = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = aws_sqs_queue.dlq.name }
        statistic   = "Maximum"
      }
      queries = []
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "pipeline" {
  for_each = local.alarms

  alarm_name          = each.value.name
  alarm_description   = each.value.description
  namespace           = try(each.value.metric.namespace, null)
  metric_name         = try(each.value.metric.metric_name, null)
  dimensions          = try(each.value.metric.dimensions, null)
  statistic           = try(each.value.metric.statistic, null)
  period              = each.value.metric == null ? null : 300
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  dynamic "metric_query" {
    for_each = each.value.queries
    content {
      id          = metric_query.value.id
      expression  = metric_query.value.expression
      label       = metric_query.value.label
      return_data = metric_query.value.return_data

      dynamic "metric" {
        for_each = metric_query.value.lambda_metric[*]
        content {
          namespace   = "AWS/Lambda"
          metric_name = metric.value
          period      = 300
          stat        = "Sum"
          dimensions  = { FunctionName = aws_lambda_function.function["processor"].function_name }
        }
      }
    }
  }
}

# -----------------------------------------------------------------------------
# CloudWatch: dashboard (5-minute granularity)
# -----------------------------------------------------------------------------
locals {
  dashboard_functions = [aws_lambda_function.function["processor"].function_name, aws_lambda_function.function["dlq_processor"].function_name]
  dashboard_tables    = [aws_dynamodb_table.pipeline["transactions"].name, aws_dynamodb_table.pipeline["errors"].name]
  pipeline_metric     = { namespace = local.names.metrics_namespace, dims = ["Environment", local.env] }

  dashboard_widgets = [
    {
      title = "Transaction processing rate (records per 5 min)"
      stat  = "Sum"
      metrics = [for m in ["RecordsProcessed", "RecordsInvalid", "RecordsDuplicate", "RecordsRetried"] :
      concat([local.pipeline_metric.namespace, m], local.pipeline_metric.dims)]
    },
    {
      title   = "Lambda invocations"
      stat    = "Sum"
      metrics = [for f in local.dashboard_functions : ["AWS/Lambda", "Invocations", "FunctionName", f]]
    },
    {
      title = "Error rate by function (%)"
      stat  = "Sum"
      # concat(...) joins one level only; flatten() would also flatten each metric row.
      metrics = concat([for i, f in local.dashboard_functions : [
        [{ expression = "IF(inv${i} > 0, 100 * err${i} / inv${i}, 0)", label = "${f} error rate", id = "rate${i}" }],
        ["AWS/Lambda", "Errors", "FunctionName", f, { id = "err${i}", visible = false }],
        ["AWS/Lambda", "Invocations", "FunctionName", f, { id = "inv${i}", visible = false }],
      ]]...)
    },
    {
      title = "Queue depth over time (messages)"
      stat  = "Maximum"
      metrics = [for q in [aws_sqs_queue.dlq.name, aws_sqs_queue.main.name] :
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
    },
    {
      title = "DynamoDB consumed capacity units"
      stat  = "Sum"
      metrics = concat([for t in local.dashboard_tables : [
        ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", t],
        ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", t],
      ]]...)
    },
    {
      title = "Average processing latency (ms)"
      stat  = "Average"
      metrics = concat(
        [for f in local.dashboard_functions : ["AWS/Lambda", "Duration", "FunctionName", f]],
        [concat([local.pipeline_metric.namespace, "FileProcessingTime"], local.pipeline_metric.dims)],
      )
    },
    {
      title = "Failed files and stored errors"
      stat  = "Sum"
      metrics = [for m in ["FilesFailed", "ErrorsStored"] :
      concat([local.pipeline_metric.namespace, m], local.pipeline_metric.dims)]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "transactions" {
  dashboard_name = local.names.dashboard

  dashboard_body = jsonencode({
    widgets = [for i, w in local.dashboard_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        stat    = w.stat
        period  = 300
        view    = "timeSeries"
        stacked = false
        metrics = w.metrics
      }
    }]
  })
}

# -----------------------------------------------------------------------------
# State moves: the addresses these resources had before same-shaped blocks became one block
# for_each over a map (local.kms_keys, local.functions, local.alarms, local.gateway_endpoint_grants,
# local.function_egress, local.tables), so that an applied stack keeps every one of them: a plan
# shows the moves and no change.
# https://developer.hashicorp.com/terraform/language/modules/develop/refactoring
# -----------------------------------------------------------------------------
moved {
  from = aws_kms_key.s3
  to   = aws_kms_key.pipeline["s3"]
}

moved {
  from = aws_kms_alias.s3
  to   = aws_kms_alias.pipeline["s3"]
}

moved {
  from = aws_kms_key.dynamodb
  to   = aws_kms_key.pipeline["dynamodb"]
}

moved {
  from = aws_kms_alias.dynamodb
  to   = aws_kms_alias.pipeline["dynamodb"]
}

moved {
  from = aws_kms_key.lambda
  to   = aws_kms_key.pipeline["lambda"]
}

moved {
  from = aws_kms_alias.lambda
  to   = aws_kms_alias.pipeline["lambda"]
}

moved {
  from = aws_cloudwatch_log_group.processor
  to   = aws_cloudwatch_log_group.function["processor"]
}

moved {
  from = aws_iam_role.processor
  to   = aws_iam_role.function["processor"]
}

moved {
  from = aws_iam_policy.processor
  to   = aws_iam_policy.function["processor"]
}

moved {
  from = aws_iam_role_policy_attachment.processor
  to   = aws_iam_role_policy_attachment.function["processor"]
}

moved {
  from = aws_lambda_function.processor
  to   = aws_lambda_function.function["processor"]
}

moved {
  from = aws_cloudwatch_log_group.dlq_processor
  to   = aws_cloudwatch_log_group.function["dlq_processor"]
}

moved {
  from = aws_iam_role.dlq_processor
  to   = aws_iam_role.function["dlq_processor"]
}

moved {
  from = aws_iam_policy.dlq_processor
  to   = aws_iam_policy.function["dlq_processor"]
}

moved {
  from = aws_iam_role_policy_attachment.dlq_processor
  to   = aws_iam_role_policy_attachment.function["dlq_processor"]
}

moved {
  from = aws_lambda_function.dlq_processor
  to   = aws_lambda_function.function["dlq_processor"]
}

moved {
  from = aws_lambda_event_source_mapping.retry_queue_to_processor
  to   = aws_lambda_event_source_mapping.function["processor"]
}

moved {
  from = aws_lambda_event_source_mapping.dlq_to_dlq_processor
  to   = aws_lambda_event_source_mapping.function["dlq_processor"]
}

moved {
  from = aws_cloudwatch_metric_alarm.processor_error_rate
  to   = aws_cloudwatch_metric_alarm.pipeline["processor_error_rate"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_depth
  to   = aws_cloudwatch_metric_alarm.pipeline["dlq_depth"]
}

moved {
  from = aws_vpc_endpoint.s3
  to   = aws_vpc_endpoint.gateway["s3"]
}

moved {
  from = aws_vpc_endpoint.dynamodb
  to   = aws_vpc_endpoint.gateway["dynamodb"]
}

moved {
  from = aws_vpc_security_group_egress_rule.functions_to_s3[0]
  to   = aws_vpc_security_group_egress_rule.functions["to_s3"]
}

moved {
  from = aws_vpc_security_group_egress_rule.functions_to_dynamodb[0]
  to   = aws_vpc_security_group_egress_rule.functions["to_dynamodb"]
}

moved {
  from = aws_vpc_security_group_egress_rule.functions_to_interface_endpoints[0]
  to   = aws_vpc_security_group_egress_rule.functions["to_interface_endpoints"]
}

moved {
  from = aws_dynamodb_table.transactions
  to   = aws_dynamodb_table.pipeline["transactions"]
}

moved {
  from = aws_dynamodb_table.errors
  to   = aws_dynamodb_table.pipeline["errors"]
}

moved {
  from = aws_dynamodb_table.file_status
  to   = aws_dynamodb_table.pipeline["file_status"]
}

# -----------------------------------------------------------------------------
# Outputs (one per created resource that tests and operators need)
# -----------------------------------------------------------------------------
output "kms_s3_key_id" {
  description = "ID of the KMS key that encrypts the upload bucket."
  value       = aws_kms_key.pipeline["s3"].key_id
}

output "kms_s3_key_arn" {
  description = "ARN of the KMS key that encrypts the upload bucket."
  value       = aws_kms_key.pipeline["s3"].arn
}

output "kms_s3_alias_name" {
  description = "Alias of the S3 KMS key."
  value       = aws_kms_alias.pipeline["s3"].name
}

output "kms_dynamodb_key_id" {
  description = "ID of the KMS key that encrypts both DynamoDB tables."
  value       = aws_kms_key.pipeline["dynamodb"].key_id
}

output "kms_dynamodb_key_arn" {
  description = "ARN of the KMS key that encrypts both DynamoDB tables."
  value       = aws_kms_key.pipeline["dynamodb"].arn
}

output "kms_dynamodb_alias_name" {
  description = "Alias of the DynamoDB KMS key."
  value       = aws_kms_alias.pipeline["dynamodb"].name
}

output "kms_lambda_key_id" {
  description = "ID of the KMS key for Lambda environment variables, SQS, CloudWatch Logs and SNS."
  value       = aws_kms_key.pipeline["lambda"].key_id
}

output "kms_lambda_key_arn" {
  description = "ARN of the KMS key for Lambda environment variables, SQS, CloudWatch Logs and SNS."
  value       = aws_kms_key.pipeline["lambda"].arn
}

output "kms_lambda_alias_name" {
  description = "Alias of the Lambda/SQS/Logs/SNS KMS key."
  value       = aws_kms_alias.pipeline["lambda"].name
}

output "s3_bucket_name" {
  description = "Name of the bucket producers upload transaction files to."
  value       = aws_s3_bucket.transactions.bucket
}

output "s3_bucket_arn" {
  description = "ARN of the upload bucket."
  value       = aws_s3_bucket.transactions.arn
}

output "processor_function_name" {
  description = "Name of the transaction processor Lambda function."
  value       = aws_lambda_function.function["processor"].function_name
}

output "processor_function_arn" {
  description = "ARN of the transaction processor Lambda function."
  value       = aws_lambda_function.function["processor"].arn
}

output "processor_role_arn" {
  description = "ARN of the transaction processor's execution role."
  value       = aws_iam_role.function["processor"].arn
}

output "processor_policy_arn" {
  description = "ARN of the transaction processor's least-privilege policy."
  value       = aws_iam_policy.function["processor"].arn
}

output "dlq_processor_function_name" {
  description = "Name of the DLQ processor Lambda function."
  value       = aws_lambda_function.function["dlq_processor"].function_name
}

output "dlq_processor_function_arn" {
  description = "ARN of the DLQ processor Lambda function."
  value       = aws_lambda_function.function["dlq_processor"].arn
}

output "dlq_processor_role_arn" {
  description = "ARN of the DLQ processor's execution role."
  value       = aws_iam_role.function["dlq_processor"].arn
}

output "dlq_processor_policy_arn" {
  description = "ARN of the DLQ processor's least-privilege policy."
  value       = aws_iam_policy.function["dlq_processor"].arn
}

output "producer_policy_json" {
  description = "The least IAM policy a producer needs to upload transaction files: PutObject on the bucket, and the bucket's KMS key (GenerateDataKey, Decrypt for multipart uploads) only through S3 and only for this bucket."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "UploadTransactionFiles"
        Effect   = "Allow"
        Action   = "s3:PutObject"
        Resource = "${aws_s3_bucket.transactions.arn}/*"
      },
      {
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
        Sid      = "EncryptUploadsThroughS3"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = aws_kms_key.pipeline["s3"].arn
        Condition = {
          StringEquals = { "kms:ViaService" = local.kms_via.s3 }
          ArnLike      = { "kms:EncryptionContext:aws:s3:arn" = local.s3_encryption_context_arns }
        }
      },
    ]
  })
}

locals {
  # What txnctl (crates/txnctl, docs/operations.md) calls, and nothing else.
  operator_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadFileStatus"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Query"]
        Resource = [local.arns.file_status_table, "${local.arns.file_status_table}/index/activity_day-index"]
      },
      {
        # Scan: `txnctl replay` without --file finds the retryable rows.
        Sid      = "ReadErrors"
        Effect   = "Allow"
        Action   = ["dynamodb:Query", "dynamodb:Scan"]
        Resource = [aws_dynamodb_table.pipeline["errors"].arn, "${aws_dynamodb_table.pipeline["errors"].arn}/index/source_key-index", "${aws_dynamodb_table.pipeline["errors"].arn}/index/transaction_id-index"]
      },
      {
        # Replay marks a row replayed_at before it sends; the request names no other attribute.
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
        Sid       = "MarkErrorsReplayed"
        Effect    = "Allow"
        Action    = "dynamodb:UpdateItem"
        Resource  = aws_dynamodb_table.pipeline["errors"].arn
        Condition = { "ForAllValues:StringEquals" = { "dynamodb:Attributes" = ["error_id", "timestamp", "replayed_at"] } }
      },
      local.table_key_statement,
      {
        Sid      = "QueueDepths"
        Effect   = "Allow"
        Action   = "sqs:GetQueueAttributes"
        Resource = [aws_sqs_queue.main.arn, aws_sqs_queue.dlq.arn]
      },
      {
        Sid      = "ReplayToMainQueue"
        Effect   = "Allow"
        Action   = "sqs:SendMessage"
        Resource = aws_sqs_queue.main.arn
      },
      {
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        Sid       = "UseQueueKeyThroughSqs"
        Effect    = "Allow"
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = aws_kms_key.pipeline["lambda"].arn
        Condition = { StringEquals = { "kms:ViaService" = local.kms_via.sqs } }
      },
      {
        # GetMetricStatistics supports no resource-level permissions (oldest message age).
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
        Sid      = "OldestMessageAge"
        Effect   = "Allow"
        Action   = "cloudwatch:GetMetricStatistics"
        Resource = "*"
      },
    ]
  }
}

output "operator_policy_json" {
  description = "The least IAM policy the operator CLI txnctl needs (status, files, errors, queues, replay)."
  value       = jsonencode(local.operator_policy)
}

output "lambda_runtime" {
  description = "Implementation deployed for both functions: python3.11 or rust."
  value       = var.lambda_runtime
}

output "processor_environment_variables" {
  description = "Environment variables of the transaction processor."
  value       = aws_lambda_function.function["processor"].environment[0].variables
  sensitive   = true
}

output "dlq_processor_environment_variables" {
  description = "Environment variables of the DLQ processor."
  value       = aws_lambda_function.function["dlq_processor"].environment[0].variables
  sensitive   = true
}

output "metric_namespace" {
  description = "CloudWatch namespace of the pipeline's own metrics (both functions' METRIC_NAMESPACE)."
  value       = var.metric_namespace
}

output "transactions_table_name" {
  description = "Name of the DynamoDB table of processed transactions."
  value       = aws_dynamodb_table.pipeline["transactions"].name
}

output "transactions_table_arn" {
  description = "ARN of the DynamoDB table of processed transactions."
  value       = aws_dynamodb_table.pipeline["transactions"].arn
}

output "errors_table_name" {
  description = "Name of the DynamoDB table of error records."
  value       = aws_dynamodb_table.pipeline["errors"].name
}

output "errors_table_arn" {
  description = "ARN of the DynamoDB table of error records."
  value       = aws_dynamodb_table.pipeline["errors"].arn
}

output "file_status_table_name" {
  description = "Name of the DynamoDB table of per-file status (one item per object version)."
  value       = aws_dynamodb_table.pipeline["file_status"].name
}

output "file_status_table_arn" {
  description = "ARN of the DynamoDB table of per-file status."
  value       = aws_dynamodb_table.pipeline["file_status"].arn
}

output "dynamodb_table_endpoints" {
  description = "Regional DynamoDB endpoint and table names, for clients that address the tables directly."
  value = {
    endpoint           = "https://dynamodb.${local.region}.amazonaws.com"
    transactions_table = aws_dynamodb_table.pipeline["transactions"].name
    errors_table       = aws_dynamodb_table.pipeline["errors"].name
  }
  sensitive = true
}

output "main_queue_url" {
  description = "URL of the main (retry) queue."
  value       = aws_sqs_queue.main.url
}

output "main_queue_arn" {
  description = "ARN of the main (retry) queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "URL of the dead letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "retry_queue_event_source_mapping_uuid" {
  description = "UUID of the event source mapping from the main queue to the processor."
  value       = aws_lambda_event_source_mapping.function["processor"].uuid
}

output "dlq_event_source_mapping_uuid" {
  description = "UUID of the event source mapping from the DLQ to the DLQ processor."
  value       = aws_lambda_event_source_mapping.function["dlq_processor"].uuid
}

output "processor_log_group_name" {
  description = "CloudWatch log group of the transaction processor."
  value       = aws_cloudwatch_log_group.function["processor"].name
}

output "dlq_processor_log_group_name" {
  description = "CloudWatch log group of the DLQ processor."
  value       = aws_cloudwatch_log_group.function["dlq_processor"].name
}

output "error_rate_alarm_name" {
  description = "Alarm on the processor's error rate."
  value       = aws_cloudwatch_metric_alarm.pipeline["processor_error_rate"].alarm_name
}

output "dlq_depth_alarm_name" {
  description = "Alarm on the DLQ's depth."
  value       = aws_cloudwatch_metric_alarm.pipeline["dlq_depth"].alarm_name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.transactions.dashboard_name
}

output "sns_topic_arn" {
  description = "ARN of the alarm notification topic."
  value       = aws_sns_topic.alerts.arn
}

output "sns_email_subscription_arn" {
  description = "ARN of the e-mail subscription (pending until confirmed)."
  value       = aws_sns_topic_subscription.alerts_email.arn
}

output "vpc_id" {
  description = "ID of the VPC whose private subnets hold the functions and the VPC endpoints."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets."
  value       = aws_subnet.private[*].id
}

output "private_route_table_id" {
  description = "ID of the private route table that carries the gateway endpoint routes."
  value       = aws_route_table.private.id
}

output "s3_vpc_endpoint_id" {
  description = "ID of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.gateway["s3"].id
}

output "dynamodb_vpc_endpoint_id" {
  description = "ID of the DynamoDB gateway endpoint."
  value       = aws_vpc_endpoint.gateway["dynamodb"].id
}

output "sqs_vpc_endpoint_id" {
  description = "ID of the SQS interface endpoint (null when attach_functions_to_vpc = false)."
  value       = one(aws_vpc_endpoint.sqs[*].id)
}

output "functions_security_group_id" {
  description = "ID of the security group of both functions (null when attach_functions_to_vpc = false)."
  value       = one(aws_security_group.functions[*].id)
}

output "interface_endpoints_security_group_id" {
  description = "ID of the security group of the interface endpoints (null when attach_functions_to_vpc = false)."
  value       = one(aws_security_group.interface_endpoints[*].id)
}

output "deployment_id" {
  description = "Random identifier of this deployment (tag DeploymentId on the functions)."
  value       = random_id.deployment.hex
}

output "aws_region" {
  description = "Region the stack is deployed in."
  value       = local.region
}
