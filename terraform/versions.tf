terraform {
  required_version = ">= 1.7" # removed blocks (secrets.tf)

  required_providers {
    aws = {
      # 6.x from 6.29: aws_lambda_permission's invoked_via_function_url, which a public function
      # URL needs (api.tf, decision 0023). The 6.0 upgrade guide changes none of the arguments
      # used here (response headers policies' etag is computed only; we never set it).
      source  = "hashicorp/aws"
      version = "~> 6.29"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
