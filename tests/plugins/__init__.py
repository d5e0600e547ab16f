"""Tests of the sagemaker_fleet plugin: hooks, operators, triggers, sensors and links."""
