import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')  # tests never wait on the Hugging Face hub
