"""The seed's own unit tests (../shared/seed/spatial_dev.py), run unchanged against the package.

The five test functions below are copied verbatim from the seed; only the imports are ours, and the
seed's module-level calls (test_unit_conv2d_naive() after each definition) are left to pytest.
"""
import numpy as np

from tinytorch.core.layers import Linear, Module  # noqa: F401  (the seed imports Module too)
from tinytorch.core.spatial import Conv2D, MaxPool2D, conv2d_naive, flatten
from tinytorch.core.tensor import Tensor


def test_unit_conv2d_naive():
    """Test convolution operation with educational feedback"""
    print("🔬 Unit Test: Convolution Operation...")

    # Test 1: Simple edge detection
    input_img = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    edge_kernel = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])  # Vertical edge detector

    result = conv2d_naive(input_img, edge_kernel)

    # Verify output shape (3x3 input, 3x3 kernel -> 1x1 output)
    assert result.shape == (1, 1, 1), f"Expected shape (1, 1, 1), got {result.shape}"

    # Test 2: Multi-channel input
    multi_channel = np.random.randn(3, 5, 5)  # 3 channels, 5x5 each
    kernel = np.array([[1, 0], [0, 1]])  # 2x2 kernel
    result = conv2d_naive(multi_channel, kernel)
    assert result.shape == (3, 4, 4), f"Expected shape (3, 4, 4), got {result.shape}"

    # Test 3: Bias addition
    simple_input = np.array([[1, 1], [1, 1]])
    simple_kernel = np.array([[1]])
    bias_value = 5
    result_with_bias = conv2d_naive(simple_input, simple_kernel, bias=bias_value)
    result_without_bias = conv2d_naive(simple_input, simple_kernel)
    bias_diff = result_with_bias - result_without_bias
    assert np.allclose(bias_diff, bias_value), "Bias not added correctly"

    print("✅ Convolution operation works correctly!")


def test_unit_conv2d():
    """Test Conv2D layer with educational feedback"""
    print("🔬 Unit Test: Conv2D Layer...")

    # Test 1: Single channel to multiple channels
    conv = Conv2D(in_channels=1, out_channels=3, kernel_size=3)
    x = Tensor(np.random.randn(1, 5, 5))
    output = conv(x)

    expected_shape = (3, 3, 3)  # 3 output channels, 3x3 spatial
    assert output.shape == expected_shape, f"Expected {expected_shape}, got {output.shape}"

    # Test 2: RGB to feature maps (realistic scenario)
    rgb_conv = Conv2D(in_channels=3, out_channels=16, kernel_size=3)
    rgb_input = Tensor(np.random.randn(3, 28, 28))  # RGB image
    features = rgb_conv(rgb_input)

    expected_shape = (16, 26, 26)  # 16 feature maps, 26x26 spatial
    assert features.shape == expected_shape, f"Expected {expected_shape}, got {features.shape}"

    # Test 3: Different kernel sizes
    large_kernel_conv = Conv2D(in_channels=1, out_channels=1, kernel_size=5)
    test_input = Tensor(np.random.randn(1, 10, 10))
    large_output = large_kernel_conv(test_input)

    expected_shape = (1, 6, 6)  # 10-5+1 = 6
    assert large_output.shape == expected_shape, f"Expected {expected_shape}, got {large_output.shape}"

    # Test 4: Parameter counting
    conv_params = Conv2D(in_channels=3, out_channels=64, kernel_size=3)
    # Weights: 64 * 3 * 3 * 3 = 1728, Bias: 64, Total: 1792
    weight_params = 64 * 3 * 3 * 3
    bias_params = 64
    total_expected = weight_params + bias_params

    weight_actual = conv_params.weight.data.size
    bias_actual = conv_params.bias.data.size if conv_params.bias else 0
    total_actual = weight_actual + bias_actual

    assert total_actual == total_expected, f"Expected {total_expected} parameters, got {total_actual}"

    print("✅ Conv2D layer works correctly!")


def test_unit_maxpool2d():
    """Test MaxPool2D layer with educational feedback"""
    print("🔬 Unit Test: MaxPool2D Layer...")

    # Test 1: Basic 2x2 pooling
    pool = MaxPool2D(pool_size=2)
    x = Tensor(np.array([[[1, 2, 3, 4],
                          [5, 6, 7, 8],
                          [9, 10, 11, 12],
                          [13, 14, 15, 16]]]))  # 1x4x4 input

    output = pool(x)
    expected_shape = (1, 2, 2)  # 4x4 -> 2x2 with pool_size=2
    assert output.shape == expected_shape, f"Expected {expected_shape}, got {output.shape}"

    # Verify max values are correct
    expected_values = np.array([[[6, 8], [14, 16]]])  # Max in each 2x2 region
    assert np.allclose(output.data, expected_values), "MaxPool values incorrect"

    # Test 2: Multi-channel pooling
    multi_input = Tensor(np.random.randn(3, 8, 8))
    multi_output = pool(multi_input)
    expected_shape = (3, 4, 4)  # Each channel pooled independently
    assert multi_output.shape == expected_shape, f"Expected {expected_shape}, got {multi_output.shape}"

    # Test 3: Different pool sizes
    pool_3x3 = MaxPool2D(pool_size=3)
    large_input = Tensor(np.random.randn(1, 9, 9))
    pool_output = pool_3x3(large_input)
    expected_shape = (1, 3, 3)  # 9x9 with 3x3 pooling and stride=3
    assert pool_output.shape == expected_shape, f"Expected {expected_shape}, got {pool_output.shape}"

    # Test 4: Integration with Conv2D
    conv = Conv2D(in_channels=1, out_channels=4, kernel_size=3)
    pooling = MaxPool2D(pool_size=2)

    test_image = Tensor(np.random.randn(1, 10, 10))
    conv_features = conv(test_image)  # Should be (4, 8, 8)
    pooled_features = pooling(conv_features)  # Should be (4, 4, 4)

    expected_shape = (4, 4, 4)
    assert pooled_features.shape == expected_shape, f"Expected {expected_shape}, got {pooled_features.shape}"

    print("✅ MaxPool2D layer works correctly!")


def test_unit_flatten():
    """Test flatten function with educational feedback"""
    print("🔬 Unit Test: Flatten Function...")

    # Test 1: 2D tensor
    x_2d = Tensor(np.array([[1, 2], [3, 4]]))
    flat_2d = flatten(x_2d)
    expected_shape = (4,)
    assert flat_2d.shape == expected_shape, f"Expected {expected_shape}, got {flat_2d.shape}"
    assert np.array_equal(flat_2d.data, [1, 2, 3, 4]), "Flatten values incorrect"

    # Test 2: 3D tensor (typical CNN output)
    x_3d = Tensor(np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]))  # (2, 2, 2)
    flat_3d = flatten(x_3d)
    expected_shape = (8,)
    assert flat_3d.shape == expected_shape, f"Expected {expected_shape}, got {flat_3d.shape}"
    assert np.array_equal(flat_3d.data, [1, 2, 3, 4, 5, 6, 7, 8]), "3D flatten values incorrect"

    # Test 3: Real CNN scenario - feature maps to classifier
    # Simulate: Conv2D(64 filters, 5x5 output) -> Flatten -> Linear
    feature_maps = Tensor(np.random.randn(64, 5, 5))  # 64 feature maps of 5x5
    flattened_features = flatten(feature_maps)
    expected_shape = (64 * 5 * 5,)  # 1600 features
    assert flattened_features.shape == expected_shape, f"Expected {expected_shape}, got {flattened_features.shape}"

    # Test 4: Preserve data integrity
    original = Tensor(np.arange(24).reshape(2, 3, 4))
    flattened = flatten(original)
    # Check that all values are preserved
    assert np.array_equal(flattened.data, np.arange(24)), "Data not preserved during flattening"

    print("✅ Flatten function works correctly!")


def test_module():
    """Run comprehensive test of spatial module"""
    print("🧪 Testing Complete Spatial Module...")

    print("\n1. Testing individual components...")
    test_unit_conv2d_naive()
    test_unit_conv2d()
    test_unit_maxpool2d()
    test_unit_flatten()

    print("\n2. Testing CNN pipeline integration...")

    # Build a simple CNN pipeline
    print(" Building CNN: Conv2D → MaxPool2D → Flatten → Linear")

    # Create layers
    conv1 = Conv2D(in_channels=3, out_channels=16, kernel_size=3)  # RGB → 16 features
    pool1 = MaxPool2D(pool_size=2)  # Spatial downsampling
    conv2 = Conv2D(in_channels=16, out_channels=32, kernel_size=3)  # 16 → 32 features
    pool2 = MaxPool2D(pool_size=2)  # More downsampling
    classifier = Linear(input_size=32*5*5, output_size=10)  # To 10 classes

    # Test forward pass with realistic input
    test_image = Tensor(np.random.randn(3, 28, 28))  # RGB image like CIFAR-10
    print(f" Input shape: {test_image.shape}")

    # Forward pass through CNN
    x = conv1(test_image)
    print(f" After Conv1: {x.shape}")

    x = pool1(x)
    print(f" After Pool1: {x.shape}")

    x = conv2(x)
    print(f" After Conv2: {x.shape}")

    x = pool2(x)
    print(f" After Pool2: {x.shape}")

    x = flatten(x)
    print(f" After Flatten: {x.shape}")

    x = classifier(x)
    print(f" Final output: {x.shape}")

    # Verify final shape
    assert x.shape == (10,), f"Expected (10,) output for classification, got {x.shape}"

    print("\n✅ All spatial module tests passed!")
    print("🎯 CNN pipeline working correctly - ready for image classification!")
