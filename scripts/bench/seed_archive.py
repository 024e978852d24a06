"""The seed's archiving approach, for the archiver benchmark: stream the output from the
CDN and hand the raw stream to boto3's upload_fileobj (the seed uses httpx.stream and
r.raw; requests' stream=True raw is the same idea and ships with moto's venv).

usage: seed_archive.py URL S3_ENDPOINT BUCKET KEY   → prints its peak RSS
"""
import os
import resource
import sys

import boto3
import requests


def main():
    url, endpoint, bucket, key = sys.argv[1:5]
    # moto takes any credentials; s3s-fs checks them (the benchmark passes its secret).
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing",
                      aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    with requests.get(url, stream=True) as r:
        r.raise_for_status()
        s3.upload_fileobj(r.raw, bucket, key)
    print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
