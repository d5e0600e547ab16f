"""Operators of the sagemaker_fleet plugin; import the module you need (each keeps heavy imports inside tasks)."""
