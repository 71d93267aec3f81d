"""Drives moto's server (an AWS emulator) for tests/aws.rs, with boto3 (which moto installs).

    python3 tests/aws_emulator.py ENDPOINT setup QUEUE        switch Batch to its no-Docker mode, create
                                                              the IAM service role, a Fargate compute
                                                              environment (in a VPC subnet) and QUEUE
    python3 tests/aws_emulator.py ENDPOINT register FILE      register-job-definition --cli-input-json FILE
    python3 tests/aws_emulator.py ENDPOINT publish TOPIC FILE publish FILE's text on SNS topic TOPIC, receive
                                                              it from an SQS queue subscribed to the topic,
                                                              print the Lambda SNS and SQS events of it
    python3 tests/aws_emulator.py ENDPOINT jobs QUEUE         every job of QUEUE (any status, array
                                                              children left out), oldest first

Each prints JSON on stdout. `register` goes through botocore's parameter validation, as
`aws batch register-job-definition --cli-input-json` does (unknown or mistyped fields fail).
"""

import json
import sys
import time
import urllib.request

import boto3

REGION = "us-east-1"


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def wait_and_configure(endpoint):
    body = json.dumps({"batch": {"use_docker": False}}).encode()
    deadline = time.time() + 60
    while True:
        try:
            request = urllib.request.Request(
                endpoint + "/moto-api/config",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            return
        except OSError as e:
            if time.time() > deadline:
                sys.exit(f"moto_server at {endpoint} did not answer: {e}")
            time.sleep(0.2)


def setup(endpoint, queue):
    wait_and_configure(endpoint)
    iam = client(endpoint, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "batch.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(
        RoleName="parqour-batch-service", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName="parqour", Description="parqour jobs", VpcId=vpc
    )["GroupId"]
    batch = client(endpoint, "batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="parqour",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "FARGATE",
            "maxvCpus": 16,
            "subnets": [subnet],
            "securityGroupIds": [group],
        },
        serviceRole=role,
    )["computeEnvironmentArn"]
    queue_arn = batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )["jobQueueArn"]
    print(json.dumps({"role": role, "compute_environment": environment, "queue": queue_arn}))


def register(endpoint, path):
    with open(path) as f:
        definition = json.load(f)
    out = client(endpoint, "batch").register_job_definition(**definition)
    out.pop("ResponseMetadata", None)
    print(json.dumps(out))


def publish(endpoint, topic_name, path):
    with open(path) as f:
        message = f.read()
    sns = client(endpoint, "sns")
    sqs = client(endpoint, "sqs")
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=topic_name + "-trigger")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if not any(s["Endpoint"] == queue_arn for s in subscriptions):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message=message)
    deadline = time.time() + 30
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        if got.get("Messages"):
            break
        if time.time() > deadline:
            sys.exit("the SNS message never reached the SQS queue")
    received = got["Messages"][0]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received["ReceiptHandle"])
    envelope = json.loads(received["Body"])
    sqs_event = {
        "Records": [
            {
                "messageId": received["MessageId"],
                "receiptHandle": received["ReceiptHandle"],
                "body": received["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": received["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        ]
    }
    sns_event = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": topic + ":lambda",
                "Sns": envelope,
            }
        ]
    }
    print(json.dumps({"sns_event": sns_event, "sqs_event": sqs_event, "envelope": envelope}))


def jobs(endpoint, queue):
    batch = client(endpoint, "batch")
    # With a filter, ListJobs returns jobs of every status.
    summaries = batch.list_jobs(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
    )["jobSummaryList"]
    # Array children ("<parent id>:<index>"): moto lists them with the queue's jobs, AWS only
    # when asked for an array job's children.
    ids = [s["jobId"] for s in summaries if ":" not in s["jobId"]]
    details = batch.describe_jobs(jobs=ids)["jobs"] if ids else []
    out = []
    for job in sorted(details, key=lambda j: j["createdAt"]):
        out.append(
            {
                "jobName": job["jobName"],
                "jobId": job["jobId"],
                "status": job["status"],
                "parameters": job.get("parameters", {}),
                "command": job.get("container", {}).get("command", []),
                "arraySize": job.get("arrayProperties", {}).get("size"),
            }
        )
    print(json.dumps(out))


def main():
    endpoint, command, *args = sys.argv[1:]
    {"setup": setup, "register": register, "publish": publish, "jobs": jobs}[command](
        endpoint, *args
    )


if __name__ == "__main__":
    main()
