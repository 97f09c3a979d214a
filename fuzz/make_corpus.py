#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets: small valid .npy files (every supported dtype, format versions
1.0, 2.0 and 3.0, 0-d to 3-d and empty arrays) and valid .safetensors files (with and without __metadata__),
plus a few near-misses the readers must reject (big-endian, Fortran order, F16), PGM files (P5 and P2, 8 and
16 bits, comments) with near misses, our manifest CSV, CBIS-DDSM case CSVs (both header spellings, quoted cells with
line breaks, CRLF, a byte-order mark), mini-MIAS Info.txt files and prepared-image cache files. Python standard
library only.

usage: make_corpus.py OUT_DIR     writes OUT_DIR/<target>/ for npy_fuzz, safetensors_fuzz, pgm_fuzz, manifest_fuzz,
                                  cbis_csv_fuzz, mias_info_fuzz and prepared_fuzz (files are overwritten)
"""
import json
import os
import struct
import sys

NPY_DTYPES = {  # descr -> struct format of one element
    "<f4": "<f", "<f8": "<d", "<i4": "<i", "<i8": "<q", "|u1": "<B", "<u2": "<H",
}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def npy(descr, shape, version=(1, 0), fortran=False, fmt=None, values=None):
    """A .npy file as numpy.save writes it: magic, version, header length, header dict padded to 64 bytes."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (descr, fortran, dims)
    length_bytes = 2 if version[0] == 1 else 4
    prefix = 6 + 2 + length_bytes
    total = (prefix + len(header) + 1 + 63) // 64 * 64
    header = header + " " * (total - prefix - len(header) - 1) + "\n"
    n = numel(shape)
    fmt = fmt or NPY_DTYPES[descr]
    if values is None:
        values = [(i * 7 + 3) % 11 - (0 if "u" in descr else 5) for i in range(n)]
        if "f" in descr:
            values = [v * 0.25 for v in values]
    data = b"".join(struct.pack(fmt, v) for v in values)
    out = b"\x93NUMPY" + bytes(version)
    out += struct.pack("<H" if length_bytes == 2 else "<I", len(header))
    return out + header.encode("latin1") + data


def safetensors(tensors, metadata=None):
    """tensors: list of (name, shape, values); laid out back to back in the given order."""
    header = {}
    data = b""
    for name, shape, values in tensors:
        blob = b"".join(struct.pack("<f", v) for v in values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(content)


def npy_seeds():
    files = {}
    shapes = [(), (3,), (2, 3), (0,), (1, 2, 2), (2, 0, 3)]
    for descr in NPY_DTYPES:
        for shape in shapes:
            key = "x".join(str(d) for d in shape) or "scalar"
            files["v1_%s_%s.npy" % (descr[1:], key)] = npy(descr, shape)
    for version in [(2, 0), (3, 0)]:
        files["v%d_f4_2x3.npy" % version[0]] = npy("<f4", (2, 3), version)
        files["v%d_u1_5.npy" % version[0]] = npy("|u1", (5,), version)
    files["v1_f4_special.npy"] = npy("<f4", (4,), values=[float("nan"), float("inf"), -0.0, 1e-45])
    # Near misses: valid layout, unsupported content.
    files["reject_big_endian.npy"] = npy(">f4", (2,), fmt=">f")
    files["reject_fortran.npy"] = npy("<f4", (2, 2), fortran=True)
    files["reject_f2.npy"] = npy("<f2", (2,), fmt="<e")
    files["reject_truncated.npy"] = npy("<f4", (2, 3))[:-4]
    return files


def safetensors_seeds():
    meta = {"builder": "smallnet", "options": '{"classes":2}', "pixel_spacing_um": "200",
            "classes": "background,mass", "synth": "synth-v1"}
    files = {
        "empty.safetensors": safetensors([]),
        "metadata_only.safetensors": safetensors([], meta),
        "one.safetensors": safetensors([("w", [2, 3], [0.5 * i for i in range(6)])]),
        "scalar.safetensors": safetensors([("s", [], [3.25])]),
        "zero_size.safetensors": safetensors([("z", [0, 4], []), ("b", [1], [1.0])]),
        "net.safetensors": safetensors(
            [("conv1.bias", [2], [0.1, -0.2]), ("conv1.weight", [2, 1, 2, 2], [0.01 * i for i in range(8)]),
             ("fc.weight", [1, 2], [float("inf"), -0.0])], meta),
        "unicode.safetensors": safetensors([("caf\u00e9/\u03b1", [1], [1.0])], {"note": "\u00b5m \u2713"}),
    }
    # Near misses the reader must reject.
    files["reject_f16.safetensors"] = files["one.safetensors"].replace(b'"F32"', b'"F16"')
    files["reject_gap.safetensors"] = safetensors([("w", [2], [1.0, 2.0])]) + b"\0\0\0\0"
    # Once accepted by the reader though the writer refuses it (found by the round trip in safetensors_fuzz).
    files["reject_empty_name.safetensors"] = safetensors([("", [1], [1.0])])
    return files


def pgm(width, height, maxval, binary=True, header=None):
    """A PGM file with a gradient in 0..maxval; `header` replaces the generated header text."""
    values = [(i * 37) % (maxval + 1) for i in range(width * height)]
    if header is None:
        header = "P%d\n%d %d\n%d\n" % (5 if binary else 2, width, height, maxval)
    if not binary:
        return (header + " ".join(str(v) for v in values) + "\n").encode("ascii")
    fmt = ">H" if maxval > 255 else "B"
    return header.encode("ascii") + b"".join(struct.pack(fmt, v) for v in values)


def pgm_seeds():
    files = {
        "p5_8bit.pgm": pgm(4, 3, 255),
        "p5_16bit.pgm": pgm(3, 2, 65535),
        "p5_12bit.pgm": pgm(5, 2, 4095),
        "p5_1x1.pgm": pgm(1, 1, 1),
        "p2_8bit.pgm": pgm(3, 3, 200, binary=False),
        "p2_16bit.pgm": pgm(2, 2, 1000, binary=False),
        "p5_comments.pgm": pgm(2, 2, 255, header="P5 # c\n#x\n2\t# w\n2 255\n"),
        "p2_comments.pgm": b"P2\n# a\n2 1\n# b\n9\n# c\n3 # d\n9\n",
    }
    # Near misses the parser must reject.
    files["reject_truncated.pgm"] = pgm(4, 4, 65535)[:-3]
    files["reject_maxval.pgm"] = pgm(1, 1, 255, header="P5 1 1 65536\n")
    files["reject_zero.pgm"] = b"P5 0 3 255\n"
    files["reject_huge.pgm"] = b"P5 100000 100000 255\n\x00"
    files["reject_above.pgm"] = b"P2 1 1 10\n11\n"
    return files


MANIFEST_HEADER = ("image,patient_id,laterality,view,density,pixel_spacing_mm,lesion_id,lesion_type,shape,subtlety,"
                   "box_x,box_y,box_width,box_height,mask\n")


def manifest_seeds():
    files = {
        "synth.csv": ("# generator: synth-v1\n# seed: 1\n" + MANIFEST_HEADER +
                      "images/P00000_L_CC.png,P00000,L,CC,B,0.2,1,mass,round,3,10,20,30,40,masks/P00000_L_CC_1.png\n"
                      "images/P00000_L_CC.png,P00000,L,CC,B,0.2,2,calcification,cluster,2,5,5,8,8,\n"
                      "images/P00000_L_MLO.png,P00000,L,MLO,B,0.2,,,,,,,,,\n"),
        "minimal.csv": "image,patient_id,laterality,view\na.png,p1,R,MLO\n",
        "quoted.csv": ('image,patient_id,laterality,view,lesion_type,mask\r\n'
                       '"dir, with comma/a.png","p ""1""",L,CC,mass,"m\nask.png"\r\n'),
        "reordered.csv": "view,laterality,image,patient_id,box_x,box_y,box_width,box_height,lesion_type\n"
                         "CC,R,b.png,p2,1,2,3,4,mass\n",
    }
    # Near misses the reader must reject.
    files["reject_unknown_column.csv"] = "image,patient_id,laterality,view,colour\na,p,L,CC,red\n"
    files["reject_open_quote.csv"] = 'image,patient_id,laterality,view\n"a,p,L,CC\n'
    files["reject_partial_box.csv"] = "image,patient_id,laterality,view,lesion_type,box_x\na,p,L,CC,mass,3\n"
    files["reject_disagree.csv"] = "image,patient_id,laterality,view\na,p,L,CC\na,p,R,CC\n"
    return {k: v.encode("utf-8") for k, v in files.items()}


CBIS_MASS = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,"
             "mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n")
CBIS_CALC = ("patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,"
             "calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,"
             "ROI mask file path\n")


def cbis_seeds():
    image = "Mass-Training_P_00001_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.4221/1.3.6.1.4.1.9590.100.1.2.3423/000000.dcm"
    roi = "Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.1083/1.3.6.1.4.1.9590.100.1.2.1532/"
    files = {
        "mass.csv": CBIS_MASS + "P_00001,3,LEFT,CC,1,mass,IRREGULAR-ARCHITECTURAL_DISTORTION,SPICULATED,4,"
                                "MALIGNANT,4,%s,%s000000.dcm,%s000001.dcm\n" % (image, roi, roi),
        "mass_messy.csv": "\ufeff" + CBIS_MASS.replace("\n", "\r\n") +
                          'P_00001, 3 ,LEFT ,CC,1,mass,OVAL,CIRCUMSCRIBED,4,BENIGN, 3,"%s\n","%s000000.dcm\n",'
                          '"%s000001.dcm\n"\r\n' % (image, roi, roi),
        "calc.csv": CBIS_CALC + "P_00005,3,RIGHT,MLO,1,calcification,AMORPHOUS,CLUSTERED,3,MALIGNANT,3,"
                                "Calc-Training_P_00005_RIGHT_MLO/1.2/1.3/000000.dcm,a/b/c/000000.dcm,"
                                "a/b/c/000001.dcm\n"
                                "P_00005,3,RIGHT,MLO,2,calcification,,,0,BENIGN_WITHOUT_CALLBACK,0,"
                                "Calc-Training_P_00005_RIGHT_MLO/1.2/1.3/000000.dcm,\"a\\b\\c\\0.dcm\",d/e/f/1.dcm\n",
    }
    # Near misses: rows the parser must flag, headers it must reject.
    files["reject_values.csv"] = CBIS_MASS + "P_1,5,UP,CC,1,tumour,,,9,X,7,i,,m\nP_2,1,LEFT,CC,1,mass,,,3,B,2,i,c\n"
    files["reject_header.csv"] = "patient_id,image view\nP_1,CC\n"
    files["reject_open_quote.csv"] = CBIS_MASS + '"P_1,1,LEFT\n'
    return {k: v.encode("utf-8") for k, v in files.items()}


def mias_seeds():
    files = {
        "info.txt": "mdb001 G CIRC B 535 425 197\nmdb002 G CIRC B 522 280 69\nmdb003 D NORM \n"
                    "mdb005 F CIRC B 477 133 30\nmdb005 F CIRC B 500 168 26\nmdb209 G CALC M\n"
                    "mdb211 G CALC M 680 327 13\n",
        "header_crlf.txt": "REFNUM BG CLASS SEVERITY X Y RADIUS\r\nmdb115 F ARCH M 461 532 117\r\n\r\n"
                           "# comment\r\nmdb130 D ASYM M 220 552 28\r\n",
    }
    files["reject_lines.txt"] = ("mdb001 X CIRC B 1 2 3\nmdb002 G BLOB B\nmdb003 G CIRC B 1 2\nmdb004 G NORM B\n"
                                 "mdb005 G SPIC M 1 2 0\nhello world\n")
    return {k: v.encode("utf-8") for k, v in files.items()}


def prepared(width, height, rois=(), unlocated=0):
    """A prepared-image cache file (data/prepared_cache.h): header padded to 64 bytes, float pixels, regions, mask."""
    head = b"MMPREP02"
    fixed = 8 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 4 + 4 + 4
    header_bytes = (fixed + 17 * len(rois) + 63) // 64 * 64
    head += struct.pack("<Iiiddfff", header_bytes, width, height, 0.2, 0.5, 100.0, 3000.0, -0.25)
    head += struct.pack("<II", unlocated, len(rois))
    for (x, y, w, h, code) in rois:
        head += struct.pack("<iiiiB", x, y, w, h, code)
    head += b"\0" * (header_bytes - len(head))
    n = width * height
    pixels = b"".join(struct.pack("<f", (i % 7) * 0.125 - 0.25) for i in range(n))
    regions = bytes((i // max(width, 1)) % 4 for i in range(n))
    mask = bytes(1 if i % 5 == 0 else 0 for i in range(n))
    return head + pixels + regions + mask


def prepared_seeds():
    good = prepared(7, 5, [(1, 1, 3, 2, 0), (0, 0, 1, 1, 1)], unlocated=1)
    return {
        "small.prep": good,
        "one_pixel.prep": prepared(1, 1),
        "no_rois.prep": prepared(16, 3),
        "truncated.prep": good[:-3],
        "bad_magic.prep": b"MMPREP01" + good[8:],
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    write(os.path.join(out, "npy_fuzz"), npy_seeds())
    write(os.path.join(out, "safetensors_fuzz"), safetensors_seeds())
    write(os.path.join(out, "pgm_fuzz"), pgm_seeds())
    write(os.path.join(out, "manifest_fuzz"), manifest_seeds())
    write(os.path.join(out, "cbis_csv_fuzz"), cbis_seeds())
    write(os.path.join(out, "mias_info_fuzz"), mias_seeds())
    write(os.path.join(out, "prepared_fuzz"), prepared_seeds())


if __name__ == "__main__":
    main()
