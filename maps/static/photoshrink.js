/* Photos shrunk in the browser before they are sent (the map's report form, the console).
 *
 * A phone photo is 12 MP and 4-8 MB; the server keeps at most `maxSidePx` on the longer side
 * anyway (geodata/photos.py MAX_SIDE_PX, handed to the page). So the file is decoded here
 * (createImageBitmap, upright as its EXIF orientation says), drawn on a canvas at most
 * `maxSidePx` on its longer side (transparency on white, as the server does) and sent as JPEG
 * at quality 0.85: a few hundred kB instead of megabytes. A file the browser cannot decode, or
 * one already small enough in an accepted type, is sent as chosen: the server checks every
 * upload anyway and stays the authority. No library, nothing loaded from elsewhere.
 */
(function (root) {
  "use strict";

  var ACCEPTED = ["image/jpeg", "image/png", "image/webp"];
  var QUALITY = 0.85;

  function decoded(file) {
    return root.createImageBitmap(file, { imageOrientation: "from-image" }).catch(function () {
      return root.createImageBitmap(file); // browsers that know no options (upright by default)
    });
  }

  /* A promise of what to upload for `file`: a JPEG Blob at most `maxSidePx` on its longer side,
   * or the file itself (small enough already, or not decodable here). Never rejects. */
  function shrink(file, maxSidePx) {
    if (typeof root.createImageBitmap !== "function" || !file) {
      return Promise.resolve(file);
    }
    return decoded(file)
      .then(function (bitmap) {
        var scale = Math.min(1, maxSidePx / Math.max(bitmap.width, bitmap.height));
        if (scale === 1 && ACCEPTED.indexOf(file.type) >= 0) {
          bitmap.close();
          return file;
        }
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(bitmap.width * scale));
        canvas.height = Math.max(1, Math.round(bitmap.height * scale));
        var context = canvas.getContext("2d");
        context.fillStyle = "#fff";
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.imageSmoothingEnabled = true;
        context.imageSmoothingQuality = "high";
        context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        bitmap.close();
        return new Promise(function (resolve) {
          canvas.toBlob(
            function (blob) {
              resolve(blob && blob.size > 0 ? blob : file);
            },
            "image/jpeg",
            QUALITY
          );
        });
      })
      .catch(function () {
        return file;
      });
  }

  root.FinderPhotos = { shrink: shrink };
})(window);
