"""Default configuration: every key the release's experiment files use (the
HigherHRNet schema) plus the few this project adds, each with a comment.

A key that is not defined here is an error when a config file or an override
names it, so a typo never passes silently. ``MODEL.EXTRA`` depends on the model
and is defined per model in ``model_extras.py``.
"""

from yacs.config import CfgNode as CN

_C = CN()

_C.OUTPUT_DIR = "output"
_C.LOG_DIR = "log"
_C.DATA_DIR = ""
_C.GPUS = (0,)
_C.WORKERS = 4
_C.PRINT_FREQ = 20
_C.AUTO_RESUME = True
_C.PIN_MEMORY = True
_C.RANK = 0
_C.VERBOSE = True
_C.DIST_BACKEND = "nccl"
_C.MULTIPROCESSING_DISTRIBUTED = True
# New: where to run. 'auto' takes the GPU when there is one; 'cuda' fails clearly without one.
_C.DEVICE = "auto"
# New: seconds a process waits in a collective (or at the rendezvous) for the others before it
# gives up: a worker that died or hangs then stops the run instead of freezing it.
_C.DIST_TIMEOUT = 1800

_C.FP16 = CN()
_C.FP16.ENABLED = False
_C.FP16.STATIC_LOSS_SCALE = 1.0
_C.FP16.DYNAMIC_LOSS_SCALE = False

_C.CUDNN = CN()
_C.CUDNN.BENCHMARK = True
_C.CUDNN.DETERMINISTIC = False
_C.CUDNN.ENABLED = True

_C.MODEL = CN()
_C.MODEL.NAME = "pose_mobilenet"
_C.MODEL.INIT_WEIGHTS = True
_C.MODEL.PRETRAINED = ""
# New: also take the head (deconv, final layers) from MODEL.PRETRAINED, as when fine-tuning a
# sub-network extracted by weight_transfer.py; the release's initialisation skips it.
_C.MODEL.PRETRAINED_HEAD = False
_C.MODEL.NUM_JOINTS = 17
_C.MODEL.TAG_PER_JOINT = True
_C.MODEL.SYNC_BN = False
# Replaced by the model's own schema (model_extras.py) when a config is loaded.
_C.MODEL.EXTRA = CN()
# EfficientHRNet's compound scaling (used by pose_efficient_hrnet only).
_C.MODEL.SCALE_FACTOR = -1
_C.MODEL.WIDTH_MULT = 1.0
_C.MODEL.DEPTH_MULT = 1.0
# New: architecture JSON used when no --superconfig is given ('' = the search space's widest).
_C.MODEL.ARCH = ""

# New: the supernet's search space. The defaults are the release's: widths and input
# resolution are searched; every block keeps expansion 6 and a 7x7 kernel and every stage
# its full depth (6, 8, 10, 10), which is what all released architectures use.
_C.SEARCH_SPACE = CN()
_C.SEARCH_SPACE.IMG_SIZES = [256, 320, 384, 448, 512]
_C.SEARCH_SPACE.WIDTH_MULTS = [1.0, 0.75, 0.5, 0.25]
_C.SEARCH_SPACE.INPUT_CHANNEL = 24
_C.SEARCH_SPACE.STAGE_CHANNELS = [32, 64, 96, 160]
_C.SEARCH_SPACE.STAGE_STRIDES = [2, 2, 2, 1]
# Choices of blocks per stage; the largest is the supernet's depth.
_C.SEARCH_SPACE.STAGE_BLOCKS = [[6], [8], [10], [10]]
_C.SEARCH_SPACE.KERNEL_SIZES = [7]
_C.SEARCH_SPACE.EXPANSIONS = [6]

_C.LOSS = CN()
# LitePose's two outputs: 1/4 (heatmaps + tags) and 1/2 (heatmaps).
_C.LOSS.NUM_STAGES = 2
_C.LOSS.WITH_HEATMAPS_LOSS = (True, True)
_C.LOSS.HEATMAPS_LOSS_FACTOR = (1.0, 1.0)
_C.LOSS.WITH_AE_LOSS = (True, False)
_C.LOSS.AE_LOSS_TYPE = "exp"
_C.LOSS.PUSH_LOSS_FACTOR = (0.001, 0.001)
_C.LOSS.PULL_LOSS_FACTOR = (0.001, 0.001)

_C.DATASET = CN()
_C.DATASET.ROOT = ""
_C.DATASET.DATASET = "coco_kpt"
_C.DATASET.DATASET_TEST = "coco"
_C.DATASET.NUM_JOINTS = 17
_C.DATASET.MAX_NUM_PEOPLE = 30
_C.DATASET.TRAIN = "train2017"
_C.DATASET.TEST = "val2017"
_C.DATASET.DATA_FORMAT = "jpg"
_C.DATASET.MAX_ROTATION = 30
_C.DATASET.MIN_SCALE = 0.75
_C.DATASET.MAX_SCALE = 1.25
_C.DATASET.SCALE_TYPE = "short"
_C.DATASET.MAX_TRANSLATE = 40
_C.DATASET.INPUT_SIZE = 512
_C.DATASET.OUTPUT_SIZE = [128, 256]
_C.DATASET.FLIP = 0.5
_C.DATASET.SIGMA = -1
_C.DATASET.SCALE_AWARE_SIGMA = False
_C.DATASET.BASE_SIZE = 256.0
_C.DATASET.BASE_SIGMA = 2.0
_C.DATASET.INT_SIGMA = False
_C.DATASET.WITH_CENTER = False
# New: any COCO-format keypoint dataset (OCHuman and the like). Explicit files override the
# standard layouts under ROOT; FLIP_PAIRS / SIGMAS / SKELETON (0-based joint indices) describe
# joints of a dataset that is neither COCO nor CrowdPose.
_C.DATASET.TRAIN_ANN_FILE = ""
_C.DATASET.TRAIN_IMAGE_DIR = ""
_C.DATASET.TEST_ANN_FILE = ""
_C.DATASET.TEST_IMAGE_DIR = ""
_C.DATASET.FLIP_PAIRS = []
_C.DATASET.SIGMAS = []
_C.DATASET.SKELETON = []
# New: generate the embedded synthetic dataset (litepose.data.synthetic) under ROOT when it is absent.
_C.DATASET.SYNTHETIC = False
# New: training images that cannot be read (missing, corrupt, truncated) are skipped with a
# warning naming each; more than this many distinct ones stop the run (0 = stop at the first).
_C.DATASET.MAX_UNREADABLE_IMAGES = 100
# New, default off (the release ignores the padding outside the source image): count that
# padding as background in the heatmap loss. BENCHMARKS.md has its measured effect.
_C.DATASET.PAD_AS_BACKGROUND = False
# New: training indexes each annotation file once per run, saved under OUTPUT_DIR's run folder
# (annotation_index/) and memory-mapped by all its processes and restarts; False: every process
# parses the file itself. The samples are the same either way.
_C.DATASET.INDEX_CACHE = True

_C.TRAIN = CN()
_C.TRAIN.LR_FACTOR = 0.1
_C.TRAIN.LR_STEP = [90, 110]
_C.TRAIN.LR = 0.001
_C.TRAIN.OPTIMIZER = "adam"
_C.TRAIN.MOMENTUM = 0.9
_C.TRAIN.WD = 0.0001
_C.TRAIN.NESTEROV = False
_C.TRAIN.GAMMA1 = 0.99
_C.TRAIN.GAMMA2 = 0.0
_C.TRAIN.BEGIN_EPOCH = 0
_C.TRAIN.END_EPOCH = 140
_C.TRAIN.RESUME = False
_C.TRAIN.CHECKPOINT = ""
_C.TRAIN.IMAGES_PER_GPU = 32
_C.TRAIN.SHUFFLE = True
# New: seed of weight init, data order, augmentation and architecture sampling (same on every rank).
_C.TRAIN.SEED = 0
# New: torch.amp mixed precision (float16 + dynamic GradScaler on CUDA, bfloat16 on CPU); FP16.ENABLED does the same.
_C.TRAIN.AMP = False
# New: clip the gradients' global L2 norm to this value; 0 = no clipping.
_C.TRAIN.CLIP_GRAD_NORM = 0.0
# New: supernet only: train the largest, the smallest and one random sub-network every step.
_C.TRAIN.SANDWICH = False
# New: training input size in pixels; 0 = the architecture's img_size (each sampled one for the supernet).
_C.TRAIN.INPUT_SIZE = 0
# New: epochs between validation-loss passes on the test split (they choose model_best); 0 = none.
_C.TRAIN.VAL_FREQ = 1
# New: at each validation, also the keypoint AP (AP .5, AR) on the first this many test images,
# with valid.py's evaluation and the TEST settings, and 4 of them drawn with the predicted
# people, in TensorBoard and train.log (first process only; for the supernet its widest or
# fixed member); 0 = none. It does not change training (generators, weights, modes).
_C.TRAIN.VAL_AP_IMAGES = 200
# New: weight of the distillation loss (teacher heatmaps as targets; dist_train.py --teacher).
_C.TRAIN.DISTILL_FACTOR = 1.0
# New: also write checkpoint.pth.tar every this many steps within an epoch (0 = at epoch ends
# only); a resumed run continues at the step after it with the same data and architectures.
_C.TRAIN.CHECKPOINT_STEPS = 0

_C.TEST = CN()
_C.TEST.IMAGES_PER_GPU = 1
_C.TEST.FLIP_TEST = False
_C.TEST.ADJUST = True
_C.TEST.REFINE = True
_C.TEST.SCALE_FACTOR = [1]
_C.TEST.DETECTION_THRESHOLD = 0.2
_C.TEST.TAG_THRESHOLD = 1.0
_C.TEST.USE_DETECTION_VAL = True
_C.TEST.IGNORE_TOO_MUCH = False
_C.TEST.MODEL_FILE = ""
_C.TEST.IGNORE_CENTER = True
_C.TEST.NMS_KERNEL = 3
_C.TEST.NMS_PADDING = 1
_C.TEST.PROJECT2IMAGE = False
_C.TEST.WITH_HEATMAPS = (True, True)
_C.TEST.WITH_AE = (True, False)
_C.TEST.LOG_PROGRESS = False

_C.DEBUG = CN()
_C.DEBUG.DEBUG = True
_C.DEBUG.SAVE_BATCH_IMAGES_GT = False
_C.DEBUG.SAVE_BATCH_IMAGES_PRED = False
_C.DEBUG.SAVE_HEATMAPS_GT = True
_C.DEBUG.SAVE_HEATMAPS_PRED = True
_C.DEBUG.SAVE_TAGMAPS_PRED = True


# Keys the release's files carry that change nothing here (its DEBUG dumps, SGD's second
# momentum, its own multiprocessing launcher, ...): accepted so those files load unchanged, with
# a warning when one is set to another value than its default. A trailing "." is a section.
COMPATIBILITY_KEYS = (
    "VERBOSE", "RANK", "MULTIPROCESSING_DISTRIBUTED", "FP16.DYNAMIC_LOSS_SCALE", "DATASET.DATA_FORMAT",
    "TEST.IMAGES_PER_GPU", "TEST.LOG_PROGRESS", "TEST.IGNORE_CENTER", "TRAIN.GAMMA1", "TRAIN.GAMMA2", "DEBUG.",
)


def default_config():
    """A fresh, mutable copy of the defaults (``MODEL.EXTRA`` still empty)."""
    return _C.clone()
