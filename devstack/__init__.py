"""The local stack behind `make up` and the test suite: real mongod, S3 and service
processes on this machine. Not deployed; containers use docker-compose.yml instead."""
