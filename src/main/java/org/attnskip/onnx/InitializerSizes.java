package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;

/**
 * Checks, right after loading, that each initializer's dims agree with the bytes it holds, so that
 * no later reader allocates for a size the file does not back (dims of 2^20 x 2^20 over four bytes
 * of data) and no count overflows.
 */
final class InitializerSizes {
    private InitializerSizes() {
    }

    static void check(LoadedModel model) {
        for (TensorProto t : model.proto().getGraph().getInitializerList()) {
            check(t);
        }
    }

    static void check(TensorProto t) {
        long n = Tensors.elementCount(t);
        int size = Tensors.elementSize(t.getDataType());
        if (size == 0 || t.getDataType() == DataType.STRING_VALUE) {
            return; // strings and unknown types: no fixed size to check, and no reader of ours takes them
        }
        long bytes;
        if (ExternalData.isExternal(t)) {
            ExternalData ext = ExternalData.of(t);
            if (ext.length() < 0) {
                return; // "the rest of the file": checkExternalData bounds it by the file
            }
            bytes = ext.length();
        } else if (!t.getRawData().isEmpty()) {
            bytes = t.getRawData().size();
        } else {
            long values = typedValueCount(t);
            if (values != n && !(values == 0 && n == 0)) {
                throw new BadInputException("initializer '" + t.getName() + "' declares dims " + t.getDimsList()
                        + " (" + n + " elements) but holds " + values + " values");
            }
            return;
        }
        if (n > Long.MAX_VALUE / size || n * size != bytes) {
            throw new BadInputException("initializer '" + t.getName() + "' declares dims " + t.getDimsList()
                    + " (" + n + " elements of " + size + " bytes) but holds " + bytes + " bytes");
        }
    }

    private static long typedValueCount(TensorProto t) {
        return (long) t.getFloatDataCount() + t.getInt32DataCount() + t.getInt64DataCount()
                + t.getDoubleDataCount() + t.getUint64DataCount();
    }
}
