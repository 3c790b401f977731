terraform {
  required_version = ">= 1.7" # removed blocks (secrets.tf)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40" # 5.x; logging_config on Lambda needs >= 5.33
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
